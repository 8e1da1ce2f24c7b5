#!/usr/bin/env bash
# WebSocket echo at scale: loadmux against its own `serve --mode ws`, 1 000
# connections, closed loop, one client thread and one server thread; and the same
# load over plain TCP against `serve --mode echo`, to show what the WebSocket layer
# costs. No WebSocket load generator is packaged in Debian (tcpkali is not), so there
# is no peer to compare with; a python3-websockets client is far too slow at 1 000
# connections to be one.
#
# Prints, per workload, medians over ROUNDS rounds of messages/s and of the client's
# CPU seconds (user+sys, getrusage) per million messages.
#
# Usage: scripts/bench-ws.sh [ROUNDS] [SECONDS] [CONNS]   (defaults: 3 10 1000)
# LOADMUX=PATH runs that binary instead of building this tree.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SECONDS_PER_RUN=${2:-10}
CONNS=${3:-1000}
if [ -z "${LOADMUX:-}" ]; then
    cargo build --release --quiet
    LOADMUX=$PWD/target/release/loadmux
fi
. scripts/lib.sh   # bench_scratch, free_port, wait_port, measure
bench_scratch


ws_port=$(free_port)
"$LOADMUX" serve --mode ws --threads 1 --listen "127.0.0.1:$ws_port" 2>/dev/null &
pids+=($!)
echo_port=$(free_port)
"$LOADMUX" serve --mode echo --threads 1 --listen "127.0.0.1:$echo_port" 2>/dev/null &
pids+=($!)
wait_port "$ws_port"; wait_port "$echo_port"

results="$work/results"
: > "$results"
# The messages completed and the upgrade p50, from the JSON report (before the CPU line).
fields() { python3 -c 'import json,sys; t=sys.stdin.read(); r=json.loads(t[:t.rindex("}")+1]); print(r["requests"]["completed"], r["requests"]["per_s"], r["errors"]["total"], (r.get("websocket") or {}).get("upgrade_latency_us", {}).get("p50", 0))'; }

for round in $(seq "$ROUNDS"); do
    echo "round $round/$ROUNDS" >&2
    for workload in ws tcp; do
        case $workload in
            ws) target="ws://127.0.0.1:$ws_port/echo"; expect=ws ;;
            tcp) target="127.0.0.1:$echo_port"; expect=echo ;;
        esac
        out=$(measure "$LOADMUX" run "$target" -m 'hello, websocket echo' --expect "$expect" \
            -c "$CONNS" -t 1 -d "${SECONDS_PER_RUN}s" -q --json -)
        cpu=$(echo "$out" | awk '/^CPU/{print $2}')
        read -r n per_s errors upgrade_p50 < <(echo "$out" | fields)
        echo "$workload $n $per_s $cpu $errors $upgrade_p50" >> "$results"
    done
done

python3 - "$results" "$SECONDS_PER_RUN" "$CONNS" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    w, n, per_s, cpu, errors, up = line.split()
    rows.setdefault(w, []).append((int(n), float(per_s), float(cpu), int(errors), int(up)))
secs, conns = float(sys.argv[2]), sys.argv[3]
print(f"{'workload':<34}{'messages/s':>12}{'CPU s/1M msg':>14}{'errors':>8}{'upgrade p50':>13}")
for w, label in [("ws", f"WebSocket echo, {conns} conns"), ("tcp", f"plain TCP echo, {conns} conns")]:
    r = rows[w]
    rate = statistics.median(p for n, p, c, e, u in r)
    cpu = statistics.median(c / n * 1e6 for n, p, c, e, u in r)
    up = f"{statistics.median(u for *_, u in r) / 1000:.1f} ms" if w == "ws" else "-"
    print(f"{label:<34}{rate:>12.0f}{cpu:>14.2f}{sum(e for *_, e, _ in r):>8}{up:>13}")
print(f"(medians of {len(rows['ws'])} rounds of {secs:.0f} s; one client thread, one server thread; client CPU from getrusage)")
PY
