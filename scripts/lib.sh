# Helpers the benchmark scripts share (sourced, not run): a scratch directory and
# the processes to end on exit, a free loopback port, a wait for a port to open, a
# redis-server to measure against, a command's CPU time, and a table of medians.

# Sets $work (a fresh temporary directory) and $pids (processes the script starts);
# when the script exits, however it exits, each of those processes is ended and
# $work removed. Call once, near the top.
bench_scratch() {
    work=$(mktemp -d)
    pids=()
    trap bench_cleanup EXIT
}
bench_cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }

# A TCP port free on 127.0.0.1 right now (the kernel picks it; the socket closes).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 5 s for something to listen on 127.0.0.1:$1; exits the script if nothing does.
wait_port() {
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "port $1 never opened" >&2
    exit 1
}

# Starts a throwaway redis-server (no persistence) on 127.0.0.1:$1, adds it to
# $pids, and waits until it listens.
start_redis() {
    redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null 2>&1 &
    pids+=($!)
    wait_port "$1"
}

# Runs a command and prints its stdout, then a line "CPU <user+sys seconds> <wall
# seconds>" (getrusage of the command and its children).
measure() {
    python3 - "$@" 3>&1 <<'PY'
import os, sys, time, subprocess
t0 = time.monotonic()
p = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
out = p.stdout.read()
_, status, ru = os.wait4(p.pid, 0)
sys.stdout.write(out.decode(errors="replace"))
os.write(3, f"\nCPU {ru.ru_utime + ru.ru_stime:.3f} {time.monotonic() - t0:.3f}\n".encode())
PY
}

# Prints, per workload, the median requests/s and CPU seconds per million requests
# over the rounds in FILE, whose lines are "WORKLOAD REQUESTS CPU_SECONDS WALL_SECONDS".
median_table() {
python3 - "$1" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, n, cpu, wall = line.split()
    rows.setdefault(name, []).append((int(n), float(cpu), float(wall)))
print(f"{'workload':<16}{'req/s':>10}{'CPU s/1M req':>14}")
for name, r in rows.items():
    rps = statistics.median(n / w for n, c, w in r)
    cpu = statistics.median(c / n * 1e6 for n, c, w in r)
    print(f"{name:<16}{rps:>10.0f}{cpu:>14.2f}")
print(f"(medians of {len(next(iter(rows.values())))} rounds)")
PY
}
