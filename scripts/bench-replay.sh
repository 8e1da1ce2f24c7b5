#!/usr/bin/env bash
# The two performance figures of issue 15, in one run, on one redis-server:
#   1. What the recording proxy adds to latency: loadmux -r 10000 -c 50 (PING, open
#      loop) direct and through `loadmux record`, alternating, ROUNDS rounds each;
#      medians of p50 and p99; and the proxy's own CPU time per proxied request.
#   2. What replay costs: client CPU (user+sys, getrusage) per request of
#      `run --replay` (a recorded session of 10 000 PINGs) against `-m 'PING\r\n'` with the
#      same bytes, closed loop, -c 50 -n REQUESTS, alternating.
# redis-server runs on a free loopback port with no persistence, stopped by pid.
#
# Usage: scripts/bench-replay.sh [ROUNDS] [REQUESTS]     (defaults: 3 500000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
REQUESTS=${2:-500000}
command -v redis-server >/dev/null || { echo "bench-replay.sh: needs redis-server (Debian redis-server)" >&2; exit 2; }
cargo build --release --quiet
LOADMUX=$PWD/target/release/loadmux


. scripts/lib.sh   # bench_scratch, free_port, wait_port, measure (the script has cd-ed to the top)
bench_scratch
json() { python3 -c "import json,sys; r=json.load(sys.stdin); print($1)"; }
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

# Starts `loadmux record` to redis into $1; sets PROXY_PORT and PROXY_PID.
start_proxy() {
    PROXY_PORT=$(free_port)
    "$LOADMUX" record --listen "127.0.0.1:$PROXY_PORT" --upstream "127.0.0.1:$redis_port" -o "$1" 2>"$work/record.log" &
    PROXY_PID=$!
    pids+=("$PROXY_PID")
    wait_port "$PROXY_PORT"
}
# The proxy's own CPU seconds so far (user + sys, from /proc): its cost per request
# does not depend on how long it waited for a core, which its latency does.
proxy_cpu() { awk -v tck="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / tck}' "/proc/$PROXY_PID/stat"; }
stop_proxy() { kill -INT "$PROXY_PID"; wait "$PROXY_PID" || true; tail -1 "$work/record.log" >&2; }

redis_port=$(free_port)
start_redis "$redis_port"

echo "== 1. latency added by the proxy: -r 10000 -c 50, PING, 10 s per run" >&2
start_proxy "$work/latency.lmxrec"
for round in $(seq "$ROUNDS"); do
    for via in direct proxy; do
        port=$redis_port; [ "$via" = proxy ] && port=$PROXY_PORT
        r=$("$LOADMUX" run "127.0.0.1:$port" -m 'PING\r\n' --expect line -r 10000 -c 50 -t 1 -d 10s -q --json -)
        line=$(echo "$r" | json 'r["latency_us"]["p50"], r["latency_us"]["p99"], r["requests"]["completed"], r["errors"]["total"]')
        echo "round $round $via p50/p99/completed/errors: $line" >&2
        echo "$line" | tr -d '(),' | awk '{print $1}' >> "$work/p50.$via"
        echo "$line" | tr -d '(),' | awk '{print $2}' >> "$work/p99.$via"
    done
done
cpu=$(proxy_cpu)
stop_proxy
steps=$(tail -1 "$work/record.log" | sed -E 's/.* ([0-9]+) steps.*/\1/')
echo "proxy CPU: ${cpu} s for $steps proxied requests: $(python3 -c "print(f'{$cpu / $steps * 1e6:.1f}')") us per request"
for via in direct proxy; do
    echo "$via: median p50 $(median < "$work/p50.$via") us, median p99 $(median < "$work/p99.$via") us"
done
echo "added to p50: $(( $(median < "$work/p50.proxy" | cut -d. -f1) - $(median < "$work/p50.direct" | cut -d. -f1) )) us"

echo "== 2. replay CPU per request against -m with the same bytes" >&2
start_proxy "$work/ping.lmxrec"
"$LOADMUX" run "127.0.0.1:$PROXY_PORT" -m 'PING\r\n' --expect line -c 1 -t 1 -n 10000 -q >/dev/null
stop_proxy
"$LOADMUX" replay-info "$work/ping.lmxrec" --sessions 1 >&2
cpu_per_million() {  # runs loadmux with the arguments; prints CPU seconds per 1M requests
    python3 - "$LOADMUX" "$@" <<'PY'
import json, os, subprocess, sys
p = subprocess.Popen(sys.argv[1:] + ["-q", "--json", "-"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
out = p.stdout.read()
_, status, ru = os.wait4(p.pid, 0)
r = json.loads(out)
assert r["errors"]["total"] == 0, r["errors"]
print(f'{(ru.ru_utime + ru.ru_stime) / r["requests"]["completed"] * 1e6:.3f}')
PY
}
common=(-c 50 -t 1 -n "$REQUESTS" -d 120s)
for round in $(seq "$ROUNDS"); do
    cpu_per_million run "127.0.0.1:$redis_port" -m 'PING\r\n' --expect line "${common[@]}" >> "$work/cpu.m_line"
    cpu_per_million run "127.0.0.1:$redis_port" -m 'PING\r\n' --expect bytes:7 "${common[@]}" >> "$work/cpu.m_bytes"
    cpu_per_million run "127.0.0.1:$redis_port" --replay "$work/ping.lmxrec" --replay-speed 0 "${common[@]}" >> "$work/cpu.replay"
    echo "round $round: -m line $(tail -1 "$work/cpu.m_line"), -m bytes:7 $(tail -1 "$work/cpu.m_bytes"), --replay $(tail -1 "$work/cpu.replay") CPU s per 1M" >&2
done
for kind in m_line m_bytes replay; do
    echo "$kind: median $(median < "$work/cpu.$kind") CPU s per 1M requests"
done
