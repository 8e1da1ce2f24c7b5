#!/usr/bin/env bash
# TLS figures against Debian's nginx (ssl, keep-alive, one worker), in one run:
#   1. HTTPS keep-alive GET, 50 connections, 1 client thread: loadmux vs wrk, ROUNDS
#      alternating rounds, medians of requests/s and of client CPU seconds
#      (user+sys, getrusage) per million requests, with the ratios.
#   2. Handshakes per second in --mode connect (one GET per connection): full
#      handshakes, and resumed ones with --tls-resume.
#   3. Client RSS per idle established TLS connection: RSS at CONNS connections
#      minus RSS at 100, divided by the difference (both at -r 1: nearly idle).
# Certificates: an ECDSA P-256 CA and server certificate made here with openssl.
# Servers run on free loopback ports and are stopped by pid.
#
# Usage: scripts/bench-tls.sh [ROUNDS] [CONNS]     (defaults: 3 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
CONNS=${2:-5000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}

for tool in nginx wrk openssl python3; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "bench-tls: needs $tool (apt-get install nginx-light wrk openssl python3)" >&2; exit 2; }
done
cargo build --release --quiet
LOADMUX=$PWD/target/release/loadmux
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ulimit -n "$(ulimit -Hn)"


. scripts/lib.sh   # bench_scratch, free_port, wait_port, measure (the script has cd-ed to the top)
bench_scratch
json_field() { python3 -c 'import json,sys; t=sys.stdin.read(); r=json.loads(t[:t.rindex("}")+1]); print(eval("r"+sys.argv[1]))' "$1"; }

# Certificates.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=bench CA" \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
    -keyout "$work/server.key" -out "$work/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n' > "$work/ext.cnf"
openssl x509 -req -in "$work/server.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -out "$work/server.pem" -days 2 -extfile "$work/ext.cnf" 2>/dev/null

mkdir -p "$work/www"; printf 'hello from nginx\n' > "$work/www/index.html"
port=$(free_port)
cat > "$work/nginx.conf" <<CONF
daemon off; master_process off; worker_processes 1; worker_rlimit_nofile 40000;
pid $work/nginx.pid; error_log $work/error.log;
events { worker_connections 20000; }
http { access_log off; client_body_temp_path $work/b; proxy_temp_path $work/p; fastcgi_temp_path $work/f;
  uwsgi_temp_path $work/u; scgi_temp_path $work/s; keepalive_requests 10000000; keepalive_timeout 300s;
  ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m; ssl_session_tickets on;
  server { listen 127.0.0.1:$port ssl; ssl_certificate $work/server.pem; ssl_certificate_key $work/server.key;
    location / { root $work/www; } } }
CONF
"$NGINX" -p "$work" -c "$work/nginx.conf" >/dev/null 2>&1 &
pids+=($!)
wait_port "$port"
GET='GET /index.html HTTP/1.1\r\nHost: localhost\r\n\r\n'

echo "== 1. HTTPS keep-alive GET, 50 connections, 1 thread, ${SECONDS_PER_RUN} s, $ROUNDS rounds"
results="$work/results"; : > "$results"
for round in $(seq "$ROUNDS"); do
    out=$(measure wrk -t1 -c50 -d"${SECONDS_PER_RUN}s" "https://127.0.0.1:$port/index.html")
    echo "wrk $(echo "$out" | awk '/requests in/{print $1}') $(echo "$out" | awk '/^CPU/{print $2, $3}')" >> "$results"
    out=$(measure "$LOADMUX" run "tls://127.0.0.1:$port" --cacert "$work/ca.pem" -m "$GET" --expect http \
        -c 50 -t 1 -d "${SECONDS_PER_RUN}s" -q --json -)
    echo "loadmux $(echo "$out" | json_field '["requests"]["completed"]') $(echo "$out" | awk '/^CPU/{print $2, $3}')" >> "$results"
done
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
m = {}
for tool in ("wrk", "loadmux"):
    r = [(int(n), float(c), float(w)) for t, n, c, w in rows if t == tool]
    rate = st.median(n / w for n, c, w in r)
    cpu = st.median(c / n * 1e6 for n, c, w in r)
    m[tool] = (rate, cpu)
    print(f"  {tool:8} {rate:10.0f} req/s   {cpu:6.2f} CPU s per 1M requests")
print(f"  loadmux/wrk: {m['loadmux'][0] / m['wrk'][0]:.2f}x req/s, {m['loadmux'][1] / m['wrk'][1]:.2f}x CPU per request")
PY

echo "== 2. Handshakes per second, --mode connect, one GET per connection, 50 connections, 1 thread, 5 s"
for resume in "" "--tls-resume"; do
    out=$("$LOADMUX" run "tls://127.0.0.1:$port" --cacert "$work/ca.pem" --mode connect -m "$GET" --expect http \
        -c 50 -t 1 -d 5s -q --json - $resume 2>/dev/null)
    full=$(echo "$out" | json_field '["tls"]["handshakes_full"]')
    resumed=$(echo "$out" | json_field '["tls"]["handshakes_resumed"]')
    per_s=$(echo "$out" | json_field '["connections"]["per_s"]')
    p50=$(echo "$out" | json_field '["tls"]["handshake_latency_us"]["p50"]')
    echo "  ${resume:-full}: ${per_s%.*} connections/s ($full full, $resumed resumed), handshake p50 ${p50} us"
done

echo "== 3. Client RSS per idle established TLS connection"
hold() {
    local n=$1
    "$LOADMUX" run "tls://127.0.0.1:$port" --cacert "$work/ca.pem" -m "$GET" --expect http -c "$n" -t 2 -r 1 \
        -d 12s --connect-rate 2000 -q >/dev/null 2>&1 &
    local pid=$!
    sleep 10
    local rss; rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
    local open; open=$(ss -tn state established "( dport = :$port )" | tail -n +2 | wc -l)
    wait "$pid"
    echo "$rss $open"
}
read -r rss_small open_small < <(hold 100)
read -r rss_big open_big < <(hold "$CONNS")
echo "  RSS ${rss_small} KiB with $open_small open, ${rss_big} KiB with $open_big open:" \
    "$(( (rss_big - rss_small) * 1024 / (open_big - open_small) )) bytes per idle TLS connection"
