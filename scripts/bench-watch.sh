#!/usr/bin/env bash
# What watching a run costs the client, against one redis-server (PING, inline):
#   plain     no live outputs
#   watched   --metrics-listen scraped 10 times a second (curl), --statsd to a UDP
#             sink, and --hlog, all at once
# Alternates them for ROUNDS rounds and prints medians of requests/s and client CPU
# seconds (user+sys, getrusage of loadmux alone) per million requests.
#
# Usage: scripts/bench-watch.sh [ROUNDS] [REQUESTS]     (defaults: 5 300000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
REQUESTS=${2:-300000}
for tool in redis-server curl; do
    command -v "$tool" >/dev/null || { echo "bench-watch.sh needs $tool (Debian: redis-server, curl)" >&2; exit 2; }
done
cargo build --release --quiet
LOADMUX=${CARGO_TARGET_DIR:-$PWD/target}/release/loadmux

. scripts/lib.sh   # bench_scratch, free_port, wait_port, measure, median_table
bench_scratch

port=$(free_port)
start_redis "$port"

# A statsd sink: reads and drops datagrams.
statsd_port=$(free_port)
python3 -c 'import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", int(sys.argv[1])))
while True: s.recv(65536)' "$statsd_port" &
pids+=($!)

results="$work/results"
: > "$results"
completed() { python3 -c 'import json,sys; t=sys.stdin.read(); print(json.loads(t[:t.rindex("}")+1])["requests"]["completed"])'; }
one() { # NAME ARGS...
    local name=$1; shift
    local out
    out=$(measure "$LOADMUX" run "127.0.0.1:$port" -m 'PING\r\n' --expect line -c 50 -t 1 -n "$REQUESTS" -d 120s -q --json - "$@")
    echo "$name $(echo "$out" | completed) $(echo "$out" | awk '/^CPU/{print $2, $3}')" >> "$results"
}
for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    one plain
    metrics_port=$(free_port)
    ( while :; do curl -s -o /dev/null "http://127.0.0.1:$metrics_port/metrics" || true; sleep 0.1; done ) &
    scraper=$!
    one watched --metrics-listen "127.0.0.1:$metrics_port" --statsd "127.0.0.1:$statsd_port" --hlog "$work/run.hlog"
    kill "$scraper"
    wait "$scraper" 2>/dev/null || true
done

median_table "$results"
