#!/usr/bin/env bash
# Compares loadmux with established peers on the same workload, in the same run:
#   redis-server PING_INLINE: loadmux vs redis-benchmark (50 connections, pipeline 1)
#   nginx keep-alive GET of a small file: loadmux vs wrk (1 thread, 50 connections)
#   redis-server SET and GET of 1 KiB values: `redis-benchmark -t set,get -d 1024 -c 50`
#     vs loadmux --resp (a SET/GET mix, {value:1024}, --expect resp), at -P 1 and -P 16
# Alternates tools for ROUNDS rounds and prints medians of requests/s and of client
# CPU seconds (user+sys, from getrusage) per million requests, with the ratios.
# Servers run on free loopback ports with throwaway config and are stopped by pid.
#
# Usage: scripts/compare-peers.sh [ROUNDS] [REQUESTS]     (defaults: 3 500000)
# ONLY=ping,nginx,resp (the default: all) picks workloads; LOADMUX=PATH runs that
# binary instead of building this tree (before/after comparisons). redis-benchmark runs
# REQUESTS SETs then REQUESTS GETs; loadmux runs 2 x REQUESTS of its mix. At -P 16 both
# run 5 x as many (a run of under a second is mostly start-up).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
REQUESTS=${2:-500000}
ONLY=${ONLY:-ping,nginx,resp}
want() { [[ ",$ONLY," == *",$1,"* ]]; }
WRK_SECONDS=${WRK_SECONDS:-10}

need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-benchmark >/dev/null || need+=(redis-tools)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null || need+=(nginx-light)
command -v wrk >/dev/null || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
fi
# LOADMUX=/path/to/loadmux measures another build (say, main's, before a change).
if [ -z "${LOADMUX:-}" ]; then
    cargo build --release --quiet
    LOADMUX=$PWD/target/release/loadmux
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

. scripts/lib.sh   # bench_scratch, free_port, wait_port, measure (the script has cd-ed to the top)
bench_scratch

redis_port=$(free_port)
start_redis "$redis_port"
mkdir -p "$work/www"; printf 'hello from nginx\n' > "$work/www/index.html"
nginx_port=$(free_port)
cat > "$work/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; pid $work/nginx.pid; error_log $work/error.log;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $work/b; proxy_temp_path $work/p; fastcgi_temp_path $work/f;
  uwsgi_temp_path $work/u; scgi_temp_path $work/s; keepalive_requests 10000000;
  server { listen 127.0.0.1:$nginx_port; location / { root $work/www; } } }
CONF
"$NGINX" -p "$work" -c "$work/nginx.conf" >/dev/null 2>&1 &
pids+=($!)
wait_port "$nginx_port"

results="$work/results"
: > "$results"
record() { echo "$1 $2 $3 $4" >> "$results"; }   # tool requests cpu wall

# The requests loadmux completed, from its JSON report (after the CPU line).
completed() { python3 -c 'import json,sys; t=sys.stdin.read(); print(json.loads(t[:t.rindex("}")+1])["requests"]["completed"])'; }

for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    if want resp; then
        for pipeline in 1 16; do
            n=$REQUESTS; [ "$pipeline" = 16 ] && n=$((REQUESTS * 5))
            out=$(measure redis-benchmark -h 127.0.0.1 -p "$redis_port" -t set,get -d 1024 -c 50 -n "$n" -P "$pipeline" -q --csv)
            cpu=$(echo "$out" | awk '/^CPU/{print $2}'); wall=$(echo "$out" | awk '/^CPU/{print $3}')
            record "redis-benchmark-setget-P$pipeline" $((2 * n)) "$cpu" "$wall"
            out=$(measure "$LOADMUX" run "127.0.0.1:$redis_port" --resp -m 'SET key:__rand_int__ {value:1024}' \
                -m 'GET key:__rand_int__' --expect resp -c 50 -t 1 -P "$pipeline" -n $((2 * n)) -d 300s -q --json -)
            cpu=$(echo "$out" | awk '/^CPU/{print $2}'); wall=$(echo "$out" | awk '/^CPU/{print $3}')
            record "loadmux-setget-P$pipeline" "$(echo "$out" | completed)" "$cpu" "$wall"
        done
    fi
    if want ping; then
        # redis-benchmark: -q prints "PING_INLINE: N requests per second"; requests are -n.
        out=$(measure redis-benchmark -h 127.0.0.1 -p "$redis_port" -t ping_inline -c 50 -n "$REQUESTS" -P 1 -q --csv)
        cpu=$(echo "$out" | awk '/^CPU/{print $2}'); wall=$(echo "$out" | awk '/^CPU/{print $3}')
        record redis-benchmark "$REQUESTS" "$cpu" "$wall"
        out=$(measure "$LOADMUX" run "127.0.0.1:$redis_port" -m 'PING\r\n' --expect line -c 50 -t 1 -n "$REQUESTS" -d 120s -q --json -)
        cpu=$(echo "$out" | awk '/^CPU/{print $2}'); wall=$(echo "$out" | awk '/^CPU/{print $3}')
        record loadmux-redis "$(echo "$out" | completed)" "$cpu" "$wall"
    fi
    want nginx || continue
    # wrk: fixed duration; its requests are parsed from its summary.
    out=$(measure wrk -t1 -c50 -d"${WRK_SECONDS}s" "http://127.0.0.1:$nginx_port/index.html")
    cpu=$(echo "$out" | awk '/^CPU/{print $2}'); wall=$(echo "$out" | awk '/^CPU/{print $3}')
    n=$(echo "$out" | awk '/requests in/{print $1}')
    record wrk "$n" "$cpu" "$wall"
    out=$(measure "$LOADMUX" run "127.0.0.1:$nginx_port" -m 'GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n' --expect http -c 50 -t 1 -d "${WRK_SECONDS}s" -q --json -)
    cpu=$(echo "$out" | awk '/^CPU/{print $2}'); wall=$(echo "$out" | awk '/^CPU/{print $3}')
    record loadmux-nginx "$(echo "$out" | completed)" "$cpu" "$wall"
done

python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    tool, n, cpu, wall = line.split()
    rows.setdefault(tool, []).append((int(n), float(cpu), float(wall)))
def med(tool):
    r = rows[tool]
    rps = statistics.median(n / w for n, c, w in r)
    cpu_per_m = statistics.median(c / n * 1e6 for n, c, w in r)
    return rps, cpu_per_m
print(f"{'workload':<26}{'tool':<17}{'req/s':>10}{'CPU s/1M req':>14}")
for workload, ours, peer in [("redis PING_INLINE c50 P1", "loadmux-redis", "redis-benchmark"),
                             ("nginx GET keep-alive c50", "loadmux-nginx", "wrk"),
                             ("redis SET+GET 1KiB c50 P1", "loadmux-setget-P1", "redis-benchmark-setget-P1"),
                             ("redis SET+GET 1KiB c50 P16", "loadmux-setget-P16", "redis-benchmark-setget-P16")]:
    if ours not in rows:
        continue
    o, p = med(ours), med(peer)
    print(f"{workload:<26}{peer:<17}{p[0]:>10.0f}{p[1]:>14.2f}")
    print(f"{'':<26}{'loadmux':<17}{o[0]:>10.0f}{o[1]:>14.2f}")
    print(f"{'':<26}{'ratio loadmux/peer':<17}  req/s {o[0]/p[0]:.2f}x   CPU per request {o[1]/p[1]:.2f}x")
print(f"(medians of {len(next(iter(rows.values())))} rounds; CPU is the client's user+sys from getrusage)")
PY
