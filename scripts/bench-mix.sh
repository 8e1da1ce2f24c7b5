#!/usr/bin/env bash
# What a request mix costs on the client, against one redis-server (PING, inline):
#   single   -m 'PING\r\n'                           the fixed-message fast path
#   turns    -m 'PING\r\n' -m 'PING\r\n'             two plain messages in turn (rendered)
#   mix2     -m 'a=1:PING\r\n' -m 'b=1:PING\r\n'     a 2-name mix (rendered, picked, per-name stats)
# and, with BEFORE=PATH (another loadmux binary), `single` with that binary too, for an
# A/B of the fast path across builds. Alternates them for ROUNDS rounds and prints medians
# of requests/s and client CPU seconds (user+sys, getrusage) per million requests.
#
# Usage: scripts/bench-mix.sh [ROUNDS] [REQUESTS]     (defaults: 5 300000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
REQUESTS=${2:-300000}
command -v redis-server >/dev/null || { echo "bench-mix.sh needs redis-server (Debian: redis-server)" >&2; exit 2; }
cargo build --release --quiet
LOADMUX=${CARGO_TARGET_DIR:-$PWD/target}/release/loadmux

. scripts/lib.sh   # bench_scratch, free_port, wait_port, measure, median_table
bench_scratch

port=$(free_port)
start_redis "$port"

results="$work/results"
: > "$results"
completed() { python3 -c 'import json,sys; t=sys.stdin.read(); print(json.loads(t[:t.rindex("}")+1])["requests"]["completed"])'; }
one() { # NAME BINARY ARGS...
    local name=$1 bin=$2; shift 2
    local out
    out=$(measure "$bin" run "127.0.0.1:$port" "$@" --expect line -c 50 -t 1 -n "$REQUESTS" -d 120s -q --json -)
    echo "$name $(echo "$out" | completed) $(echo "$out" | awk '/^CPU/{print $2, $3}')" >> "$results"
}
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    one single "$LOADMUX" -m 'PING\r\n'
    [ -n "${BEFORE:-}" ] && one single-before "$BEFORE" -m 'PING\r\n'
    one turns "$LOADMUX" -m 'PING\r\n' -m 'PING\r\n'
    one mix2 "$LOADMUX" -m 'a=1:PING\r\n' -m 'b=1:PING\r\n'
done

median_table "$results"
