# Helpers the benchmark scripts share (sourced, not run): a free loopback port, a
# wait for a port to open, and a command's CPU time.

# A TCP port free on 127.0.0.1 right now (the kernel picks it; the socket closes).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to 5 s for something to listen on 127.0.0.1:$1; exits the script if nothing does.
wait_port() {
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.05; done
    echo "port $1 never opened" >&2
    exit 1
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
