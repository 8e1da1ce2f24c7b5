#!/usr/bin/env bash
# Scale figures for docs/performance.md, against `loadmux serve` in a separate process:
#   1. client RSS per connection: RSS at 19 000 connections minus RSS at 100, / 18 900
#   2. client CPU with 19 000 mostly idle connections at -r 10 (timers at scale)
#   3. connection churn (--mode connect) with and without --linger0
#   4. throughput with -t 1 and -t 2 against a server pinned to the other core
#   5. syscalls per request at -P 1 and -P 16 (strace -c -f over -n requests)
# Usage: scripts/bench-scale.sh [CONNECTIONS]   (default 19000; needs ulimit -n > it)
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-19000}
cargo build --release --quiet
BIN=$PWD/target/release/loadmux
ulimit -n "$(ulimit -Hn)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR=127.0.0.1:$port
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c 0 "$BIN" serve --listen "$ADDR" --threads 1 2>/dev/null &
pids+=($!)
sleep 0.5

# Evaluates a Python expression over the JSON report on stdin, bound to `d`.
field() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }   # user+sys clock ticks
hz=$(getconf CLK_TCK)

# Holds N connections at 10 req/s; samples RSS and CPU after a 4 s warm-up.
hold() {
    local n=$1
    "$BIN" run "$ADDR" -c "$n" -r 10 --warmup 4s -d 8s -q --json "/tmp/bench-hold-$n.json" >/dev/null &
    local pid=$!
    sleep 6
    local rss t1 t2
    rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
    t1=$(ticks "$pid"); sleep 4; t2=$(ticks "$pid")
    wait "$pid"
    echo "$n $rss $(( t2 - t1 ))"
}
read -r _ rss_small _ < <(hold 100)
read -r _ rss_big cpu_big < <(hold "$CONNS")
open=$(field 'd["connections"]["max_open"]' < "/tmp/bench-hold-$CONNS.json")
echo "connections held: $open of $CONNS"
echo "RSS: ${rss_small} KiB at 100, ${rss_big} KiB at $CONNS: $(( (rss_big - rss_small) * 1024 / (CONNS - 100) )) bytes per connection"
echo "CPU at $CONNS connections, 10 req/s: $(python3 -c "print(round($cpu_big / $hz / 4 * 100, 1))")% of one core"

for linger in "" "--linger0"; do
    rate=$("$BIN" run "$ADDR" --mode connect -c 200 -d 5s $linger -q --json - 2>/dev/null \
        | field '"%.0f conn/s, errors %d" % (d["connections"]["per_s"], d["errors"]["total"])')
    echo "churn ${linger:-(FIN close)}: $rate"
done

for t in 1 2; do
    rps=$(taskset -c 1 "$BIN" run "$ADDR" -c 50 -t "$t" -d 5s -q --json - 2>/dev/null | field 'round(d["requests"]["per_s"])')
    echo "-t $t (client on core 1, server on core 0): $rps req/s"
done
for t in 1 2; do
    rps=$("$BIN" run "$ADDR" -c 50 -t "$t" -d 5s -q --json - 2>/dev/null | field 'round(d["requests"]["per_s"])')
    echo "-t $t (client unpinned, server on core 0): $rps req/s"
done

if command -v strace >/dev/null; then
    for p in 1 16; do
        n=200000
        strace -c -f -o /tmp/bench-strace.txt "$BIN" run "$ADDR" -c 50 -t 1 -P "$p" -n "$n" -d 60s -q >/dev/null
        python3 - "$n" "$p" <<'PY'
import sys, re
n, p = int(sys.argv[1]), sys.argv[2]
calls = {}
for line in open("/tmp/bench-strace.txt"):
    f = line.split()
    if len(f) >= 5 and f[-1].isidentifier() and f[-1] != "total" and f[3].isdigit():
        calls[f[-1]] = int(f[3])
total = sum(calls.values())
top = ", ".join(f"{k} {v/n:.3f}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:5])
print(f"syscalls per request at -P {p}: {total/n:.3f} ({top})")
PY
    done
else
    echo "strace not installed: skipping syscall counts (apt-get install strace)"
fi
