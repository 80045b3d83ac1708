#!/usr/bin/env bash
# dockgate sidecar benchmark: what deciding every request costs.
#
#   1. The auth endpoint alone: `wrk` on the sidecar's `/_dockgate/auth` (the sidecar listening
#      on TCP loopback for this), decisions per second and latency; plus the sidecar's own
#      decision-time histogram.
#   2. `docker run --rm --network none busybox true`, a full create/attach/start/wait/remove
#      cycle: direct socket vs transport-only gateway vs full gateway (nginx + module +
#      sidecar, mediated create).
#   3. GET /containers/json, sequential keep-alive requests (same Python client everywhere):
#      p50/p99 direct vs transport-only gateway vs full gateway (TCP, and the unix socket the
#      sidecar owns and relays to nginx with the caller's credentials).
#   4. 200 MB of `docker exec` stdout: direct vs full gateway over TCP vs the relayed socket.
#
# Knobs: BENCH_WRK_SECONDS (10) BENCH_WRK_CONNS (16) BENCH_RUN_CYCLES (30)
#        BENCH_LAT_REQUESTS (3000)
# Prints a Markdown report on stdout; progress on stderr. Loopback and unix sockets only.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
repo=$PWD

wrk_seconds=${BENCH_WRK_SECONDS:-10}
wrk_conns=${BENCH_WRK_CONNS:-16}
cycles=${BENCH_RUN_CYCLES:-30}
lat_requests=${BENCH_LAT_REQUESTS:-3000}
dockerd_sock=/var/run/docker.sock
nginx_bin=/usr/sbin/nginx
module=$repo/build/debian/ngx_http_dockgate_module.so
sidecar=$repo/target/release/dockgate

# shellcheck source=bench/lib.sh
. bench/lib.sh
for f in "$module" "$sidecar"; do
    [ -e "$f" ] || die "$f missing: run make module sidecar"
done
command -v wrk >/dev/null || die "wrk missing: apt-get install wrk"

tmp=$(mktemp -d /tmp/dockgate-bench-sidecar.XXXXXX)
pids=()
cleanup() {
    stop_pids
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM


# Private copies: a rebuild during the run must not pull files from under nginx.
cp "$module" "$tmp/module.so"
cp "$sidecar" "$tmp/dockgate"

# --- the sidecar: one on a unix socket for nginx, one on TCP for wrk --------------------
start_sidecar() { # NAME LISTEN
    # (the relayed unix listener of the default config goes to this run's directory too)
    sed -e "s#unix:/run/dockgate/sidecar.sock#$2#" \
        -e "s#\"/run/dockgate/docker.sock\"#\"$tmp/$1-docker.sock\"#" \
        -e "s#unix:/run/dockgate/private/#unix:$tmp/$1-private/#" \
        sidecar/decision/src/default.toml >"$tmp/$1.toml"
    RUST_LOG=warn "$tmp/dockgate" serve --config "$tmp/$1.toml" 2>"$tmp/$1.log" &
    pids+=($!)
}
auth_port=$(free_port)
start_sidecar sidecar "unix:$tmp/sidecar.sock"
start_sidecar sidecar-tcp "127.0.0.1:$auth_port"

# --- nginx: the transport-only gateway and the full gateway ----------------------------
port_gw=$(free_port)
port_full=$(free_port)
# Two nginx processes from the one renderer: the transport alone, and the gateway deciding
# through the sidecar (with the relay of the sidecar's unix socket).
render_gateway "$tmp/dockgate" "$tmp/module.so" "$tmp/gw" --transport-only \
    --access-log "$tmp/gw/access.log dockgate" --listen "=127.0.0.1:$port_gw" >/dev/null
render_gateway "$tmp/dockgate" "$tmp/module.so" "$tmp" --config "$tmp/sidecar.toml" \
    --access-log "$tmp/access.log dockgate" --listen "loopback=127.0.0.1:$port_full" >/dev/null
for _ in $(seq 1 50); do [ -S "$tmp/sidecar.sock" ] && break; sleep 0.1; done
for d in "$tmp/gw" "$tmp"; do
    "$nginx_bin" -p "$d" -c "$d/nginx.conf" -t -q || die "nginx config test failed ($d)"
    "$nginx_bin" -p "$d" -c "$d/nginx.conf" </dev/null >"$d/nginx.out" 2>&1 &
    pids+=($!)
done
for p in "$port_gw" "$port_full"; do
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$p/_ping" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -sf "http://127.0.0.1:$p/_ping" >/dev/null || die "the gateway on $p does not answer"
done
curl -sf "http://127.0.0.1:$auth_port/_dockgate/metrics" >/dev/null || die "the TCP sidecar does not answer"
log "sidecar, gateway (127.0.0.1:$port_gw) and full gateway (127.0.0.1:$port_full) up"

# --- 1. the auth endpoint ----------------------------------------------------------------
auth_row() { # LABEL METHOD URI [CONNECTIONS]
    local out rps p50 p99
    out=$(wrk -t"$(( ${4:-$wrk_conns} < 2 ? 1 : 2 ))" -c"${4:-$wrk_conns}" -d"${wrk_seconds}s" --latency \
        -H "X-Original-Method: $2" -H "X-Original-URI: $3" -H "X-Dockgate-Listener: loopback" \
        "http://127.0.0.1:$auth_port/_dockgate/auth")
    rps=$(awk '/^Requests\/sec/ { printf "%d", $2 }' <<<"$out")
    p50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
    p99=$(awk '$1 == "99%" { print $2 }' <<<"$out")
    echo "| $1 | $rps | $p50 | $p99 |"
}
log "1/4: wrk on the auth endpoint"
auth_allow=$(auth_row "allow: GET /v1.41/containers/json" GET /v1.41/containers/json)
auth_mediated=$(auth_row "allow, mediated: POST /v1.41/containers/create" POST "/v1.41/containers/create?name=x")
auth_refuse=$(auth_row "refuse: POST /v1.41/swarm/init" POST /v1.41/swarm/init)
auth_one=$(auth_row "allow, one connection (sequential)" GET /v1.41/containers/json 1)
metrics=$(curl -sf "http://127.0.0.1:$auth_port/_dockgate/metrics")
decisions=$(awk '/^dockgate_decision_seconds_count/ { print $2 }' <<<"$metrics")
under() { awk -v le="$1" -v n="$decisions" '$0 ~ "le=\"" le "\"" { printf "%.4f%%", 100 * $2 / n }' <<<"$metrics"; }

# --- 2. docker run cycles -----------------------------------------------------------------
cycle_row() { # LABEL DOCKER_HOST
    local start end
    start=$(date +%s%N)
    for _ in $(seq 1 "$cycles"); do
        DOCKER_HOST=$2 docker run --rm --network none busybox:latest true || die "run failed via $2"
    done
    end=$(date +%s%N)
    echo $(((end - start) / cycles / 1000000))
}
log "2/4: $cycles docker run cycles per endpoint"
c_direct=$(cycle_row direct "unix://$dockerd_sock")
c_gw=$(cycle_row gateway "tcp://127.0.0.1:$port_gw")
c_full=$(cycle_row full "tcp://127.0.0.1:$port_full")
c_direct2=$(cycle_row direct "unix://$dockerd_sock")
c_direct=$(((c_direct + c_direct2) / 2))

# --- 3. GET /containers/json latency ------------------------------------------------------
cat >"$tmp/latency.py" <<'PY'
import socket, sys, time
target, n = sys.argv[1], int(sys.argv[2])
def connect():
    if target.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX); s.connect(target[5:])
    else:
        host, port = target.rsplit(":", 1); s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s
req = b"GET /v1.41/containers/json HTTP/1.1\r\nHost: docker\r\n\r\n"
s, f, times = connect(), None, []
f = s.makefile("rb")
for i in range(n + 200):
    t = time.perf_counter_ns()
    s.sendall(req)
    length, chunked, closing = 0, False, False
    status = f.readline()
    while True:
        line = f.readline()
        if line in (b"\r\n", b""): break
        k, _, v = line.decode().partition(":")
        k = k.lower(); v = v.strip().lower()
        if k == "content-length": length = int(v)
        if k == "transfer-encoding" and v == "chunked": chunked = True
        if k == "connection" and v == "close": closing = True
    if chunked:
        while True:
            size = int(f.readline().split(b";")[0], 16); f.read(size + 2)
            if size == 0: break
    else:
        f.read(length)
    if i >= 200: times.append(time.perf_counter_ns() - t)
    if closing:
        s.close(); s = connect(); f = s.makefile("rb")
times.sort()
print(times[len(times) // 2] // 1000, times[len(times) * 99 // 100] // 1000)
PY
log "3/4: GET /containers/json, $lat_requests sequential requests per endpoint"
read -r l_direct l_direct99 < <(python3 "$tmp/latency.py" "unix:$dockerd_sock" "$lat_requests")
read -r l_gw l_gw99 < <(python3 "$tmp/latency.py" "127.0.0.1:$port_gw" "$lat_requests")
read -r l_full l_full99 < <(python3 "$tmp/latency.py" "127.0.0.1:$port_full" "$lat_requests")
read -r l_relay l_relay99 < <(python3 "$tmp/latency.py" "unix:$tmp/sidecar-docker.sock" "$lat_requests")

# --- 4. a bulk stream through the sidecar's unix socket (relay) vs the TCP listener ------
log "4/4: 200 MB of exec stdout, full gateway over TCP vs the relayed unix socket"
stream_c=$(docker run -d --network none busybox:latest sleep 600)
pids_c=$stream_c
stream_mbps() { # DOCKER_HOST
    local start end best=0 mbps
    for _ in 1 2 3; do
        start=$(date +%s%N)
        DOCKER_HOST=$1 docker exec "$stream_c" head -c 209715200 /dev/zero | wc -c >/dev/null
        end=$(date +%s%N)
        mbps=$((200 * 1000000000 / (end - start)))
        ((mbps > best)) && best=$mbps
    done
    echo "$best"
}
s_direct=$(stream_mbps "unix://$dockerd_sock")
s_full=$(stream_mbps "tcp://127.0.0.1:$port_full")
s_relay=$(stream_mbps "unix://$tmp/sidecar-docker.sock")
docker rm -f "$pids_c" >/dev/null

grep -E '\[(alert|crit|emerg)\]' "$tmp/error.log" >&2 && log "nginx reported errors (above)"

cat <<REPORT
- machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)
- nginx $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///') (Debian) + module, worker_processes 2; sidecar: built-in configuration (anonymous developer on loopback, conservative policy), $(git log -1 --format=%h)
- dockerd $(docker version --format '{{.Server.Version}}' 2>/dev/null), docker CLI $(docker version --format '{{.Client.Version}}' 2>/dev/null)

**1. The auth endpoint** (\`wrk -t2 -c$wrk_conns -d${wrk_seconds}s\` on the sidecar over TCP loopback; the last row
with one connection, \`-t1 -c1\`):

| decision | decisions/s | p50 | p99 |
|---|---|---|---|
$auth_allow
$auth_mediated
$auth_refuse
$auth_one

In-process decision time over these $decisions decisions (the sidecar's histogram): $(under 0.0001) under 100 µs, $(under 0.001) under 1 ms.

**2. \`docker run --rm --network none busybox true\`**, mean of $cycles cycles:

| direct | gateway (transport only) | full gateway (+ sidecar) |
|---|---|---|
| $c_direct ms | $c_gw ms ($(awk -v a="$c_gw" -v b="$c_direct" 'BEGIN { printf "%.2f", a / b }')x) | $c_full ms ($(awk -v a="$c_full" -v b="$c_direct" 'BEGIN { printf "%.2f", a / b }')x) |

**3. GET /containers/json**, $lat_requests sequential keep-alive requests (same client):

| | direct (unix socket) | gateway (transport only, TCP) | full gateway (TCP) | full gateway (sidecar's unix socket, relayed) |
|---|---|---|---|---|
| p50 | $l_direct µs | $l_gw µs (+$((l_gw - l_direct)) µs) | $l_full µs (+$((l_full - l_direct)) µs) | $l_relay µs (+$((l_relay - l_direct)) µs) |
| p99 | $l_direct99 µs | $l_gw99 µs | $l_full99 µs | $l_relay99 µs |

**4. \`docker exec C head -c 200M /dev/zero\`**, best of 3, MB/s:

| direct | full gateway (TCP) | full gateway (sidecar's unix socket, relayed) |
|---|---|---|
| $s_direct | $s_full ($(awk -v a="$s_full" -v b="$s_direct" 'BEGIN { printf "%.2f", a / b }')x) | $s_relay ($(awk -v a="$s_relay" -v b="$s_direct" 'BEGIN { printf "%.2f", a / b }')x) |
REPORT
