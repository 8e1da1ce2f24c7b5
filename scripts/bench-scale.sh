#!/usr/bin/env bash
# Scale figures for docs/performance.md, against `loadmux serve` in a separate process:
#   1. client RSS per connection: RSS at 19 000 connections minus RSS at 100, / 18 900
#   2. client CPU with 19 000 mostly idle connections at -r 10 (timers at scale)
#   3. connection churn (--mode connect) with and without --linger0
#   4. throughput with -t 1 and -t 2 against a server pinned to the other core
#   5. syscalls per request at -P 1 and -P 16 (strace -c -f over -n requests)
#   6. (first, on a clean TIME_WAIT table) the ramp: seconds until all CONNECTIONS are
#      open, with the kernel picking source ports, with loadmux picking them (the
#      default), and spread over --source 127.0.0.2-127.0.0.5
#   7. churn stability: --mode connect -c 200 for 20 s, connects per second against
#      their median
#   8. open-loop CPU: client CPU per request at -r 50000 -c 50 -t 1 against closed
#      loop on the same connections (client on core 1, server on core 0)
# Usage: scripts/bench-scale.sh [CONNECTIONS]   (default 19000; needs ulimit -n > it)
#
# As root, the whole script runs in a network namespace of its own: the ramps leave
# 38 000 TIME_WAIT sockets and the churn up to the whole ephemeral range, for 60 s,
# which on the host starve other programs' port-0 binds. The namespace's TIME_WAIT
# table, port space and TCP counters are its own, and die with it.
set -euo pipefail
cd "$(dirname "$0")/.."
CONNS=${1:-19000}
cargo build --release --quiet
if [ -z "${BENCH_SCALE_NETNS:-}" ] && [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
    ns=bench-scale-$$
    if ip netns add "$ns" 2>/dev/null; then
        trap 'ip netns del "$ns"' EXIT
        ip netns exec "$ns" ip link set lo up
        echo "running in network namespace $ns (load average: $(cut -d' ' -f1-3 /proc/loadavg))"
        BENCH_SCALE_NETNS=$ns ip netns exec "$ns" "$0" "$@"
        echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
        exit
    fi
fi
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

# Runs the command ARGS (a loadmux run, JSON to /tmp/bench-cpu.json) and prints its
# user+sys CPU seconds.
client_cpu() {
    python3 - "$@" <<'PY'
import resource, subprocess, sys
subprocess.run(sys.argv[1:] + ["-q", "--json", "/tmp/bench-cpu.json"], stdout=subprocess.DEVNULL, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{r.ru_utime + r.ru_stime:.3f}")
PY
}

# 6. The ramp, first: the kernel's port search skips ports bound explicitly, even in
# TIME_WAIT, so the kernel's figure is only fair on a table no loadmux run has filled.
tw=$(ss -Htan state time-wait | wc -l)
[ "$tw" -gt 1000 ] && echo "note: $tw sockets in TIME_WAIT already: the kernel's ramp below is slowed by them"
ramp() {
    local label=$1; shift
    local cpu
    cpu=$(client_cpu "$BIN" run "$ADDR" -c "$CONNS" -r 100 -d 3s "$@")
    python3 - "$label" "$cpu" "$CONNS" <<'PY'
import json, sys
label, cpu, conns = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
d = json.load(open("/tmp/bench-cpu.json"))
opened = [r["open"] for r in d["timeline"]]
ramp = d["ramp_s"]
ramp = f"{ramp:.2f} s" if ramp is not None else "never"
print(f"ramp to {conns} ({label}): all open after {ramp}; open per second {opened}; "
      f"errors {d['errors']['total']}; client CPU {cpu:.2f} s")
PY
}
ramp "kernel picks ports" --local-ports kernel
echo "waiting 61 s for TIME_WAIT to clear"; sleep 61
ramp "loadmux picks ports, no flag"
ramp "--source 127.0.0.2-127.0.0.5" --source 127.0.0.2-127.0.0.5

# 7. Churn stability, with FIN and with RST close. The kernel's counters say whether
# the server's accept queue overflowed and SYNs were sent again (1 s stalls); they
# are this namespace's own when the script runs in one, else the host's.
tcp_counter() { awk -v k="$1" '/^TcpExt:/ { if (!n) { for (i = 2; i <= NF; i++) name[i] = $i; n = 1 } else for (i = 2; i <= NF; i++) if (name[i] == k) print $i }' /proc/net/netstat; }
for close in FIN RST; do
    flag=(); [ "$close" = RST ] && flag=(--linger0)
    overflows=$(tcp_counter ListenOverflows); syn_retries=$(tcp_counter TCPSynRetrans)
    # The client's CPU ticks are sampled once a second: on a shared machine a slow
    # second with few ticks was the neighbours' doing; one with as many ticks as
    # usual but few connects is loadmux's (tests/scale.rs applies the same rule).
    python3 - "$BIN" "$ADDR" "${flag[@]}" > /tmp/bench-churn-ticks.txt <<'PY'
import subprocess, sys, time
cmd = [sys.argv[1], "run", sys.argv[2], "--mode", "connect", "-c", "200", "-d", "20s", *sys.argv[3:], "-q", "--json", "/tmp/bench-cpu.json"]
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
def ticks():
    try:
        f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except (OSError, IndexError):
        return None
start, last, out = time.monotonic(), ticks() or 0, []
for second in range(1, 21):
    time.sleep(max(0.0, start + second - time.monotonic()))
    now = ticks()
    if now is None:
        break
    out.append(now - last)
    last = now
p.wait()
print(" ".join(map(str, out)))
PY
    overflows=$(( $(tcp_counter ListenOverflows) - overflows )); syn_retries=$(( $(tcp_counter TCPSynRetrans) - syn_retries ))
    python3 - "$close" "$overflows" "$syn_retries" <<'PY'
import json, statistics, sys
close, overflows, syn_retries = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open("/tmp/bench-cpu.json"))
c = [r["connects"] for r in d["timeline"]]
ticks = [int(t) for t in open("/tmp/bench-churn-ticks.txt").read().split()]
m = statistics.median(c)
# Connects per CPU second, seconds 2..19 (start-up and exit fall in the first and last).
per_cpu = [n * 100 / max(t, 1) for n, t in zip(c, ticks)][1:-1]
pm = statistics.median(per_cpu) if per_cpu else 0
print(f"churn 20 s (--mode connect -c 200, {close}): median {m:.0f} connects/s, "
      f"min {min(c)/m:.2f}x and max {max(c)/m:.2f}x the median; "
      f"connects per CPU second: median {pm:.0f}, min {min(per_cpu)/pm:.2f}x and max {max(per_cpu)/pm:.2f}x; "
      f"addr_unavailable {d['errors']['by_kind']['addr_unavailable']}, errors {d['errors']['total']}; "
      f"accept-queue overflows {overflows}, SYNs sent again {syn_retries}; "
      f"client CPU {sum(ticks) / 100:.1f} s; per second {c}; CPU ticks per second {ticks}")
PY
done

# 8. Open-loop CPU against closed loop, client on core 1.
per_request() {
    local cpu
    cpu=$(client_cpu taskset -c 1 "$BIN" run "$ADDR" -c 50 -t 1 -d 5s "$@")
    python3 - "$cpu" <<'PY'
import json, sys
d = json.load(open("/tmp/bench-cpu.json"))
n = d["requests"]["completed"]
lag = d["send_lag_us"]
print(f"{float(sys.argv[1]) / n * 1e6:.3f} {n} {lag['p50']} {lag['p99']} {lag['max']} {d['requests']['sends_dropped']}")
PY
}
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

# Closed loop first: its rate says what this machine can do. At -r 50000 on a
# machine that cannot complete 50 000 a second, every send is late and the ratio
# means nothing, so the ratio is also taken at 40% of the closed-loop rate.
read -r closed_cpu closed_n _ < <(per_request)
echo "closed loop -c 50 -t 1: ${closed_cpu} s CPU per million requests ($closed_n completed in 5 s)"
moderate=$(( closed_n * 2 / 5 / 5 ))
for rate in 50000 "$moderate"; do
    read -r open_cpu open_n lag50 lag99 lagmax dropped < <(per_request -r "$rate")
    echo "open loop -r $rate -c 50 -t 1: ${open_cpu} s CPU per million requests ($open_n completed), send lag p50/p99/max ${lag50}/${lag99}/${lagmax} µs, dropped sends $dropped; CPU ratio to closed loop $(python3 -c "print(round($open_cpu / $closed_cpu, 2))")x"
done
