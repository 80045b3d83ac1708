#!/usr/bin/env bash
# dockgate among its peers, in one run: GET /_ping and GET /containers/json under load, on
#
#   direct    dockerd's own unix socket
#   nginx     plain nginx proxying to the socket (no decisions at all)
#   haproxy   HAProxy with an endpoint ACL in the style of docker-socket-proxy (path regexes
#             by method: the URL-only proxy people put in front of the socket today)
#   dockgate  the full gateway as `make run` starts it (module, sidecar deciding every
#             request with the built-in configuration), tcp://127.0.0.1:2375
#
# The load generator is oha (it speaks to unix sockets too, so the direct column is measured
# the same way): BENCH_CONNS connections for BENCH_SECONDS, interleaved rounds (direct,
# nginx, haproxy, dockgate, direct, ...), medians of req/s and p50. Prints a Markdown report
# on stdout, progress on stderr; stops by itself (every step has a timeout).
#
# Needs: haproxy (apt), oha (cargo install oha), the module and the sidecar built (make).
# Knobs: BENCH_CONNS (8)  BENCH_SECONDS (10)  BENCH_ROUNDS (3)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
repo=$PWD
conns=${BENCH_CONNS:-8}
seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-3}
work=$(mktemp -d /tmp/dockgate-bench-peers.XXXXXX)
pids=()

# shellcheck source=bench/lib.sh
. bench/lib.sh
oha=$(command -v oha || echo "$HOME/.cargo/bin/oha")
for tool in haproxy curl python3 timeout; do
    command -v "$tool" >/dev/null || die "missing $tool (apt-get install haproxy)"
done
[ -x "$oha" ] || die "missing oha (cargo install oha)"
[ -f build/debian/ngx_http_dockgate_module.so ] || die "missing the module (make module)"
[ -x target/release/dockgate ] || die "missing the sidecar (make sidecar)"
curl -sf --unix-socket /var/run/docker.sock http://d/_ping >/dev/null || die "dockerd does not answer"

cleanup() {
    stop_pids
    rm -rf "$work"
}
trap cleanup EXIT

# === plain nginx ===
nginx_port=$(free_port)
user=""; [ "$(id -u)" = 0 ] && user="user root root;"
mkdir -p "$work/nginx"
cat >"$work/nginx/nginx.conf" <<NGINX
$user
daemon off;
worker_processes 2;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/tmp_body;
    proxy_temp_path $work/nginx/tmp_proxy;
    upstream dockerd { server unix:/var/run/docker.sock; keepalive 32; }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://dockerd;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
NGINX
/usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
pids+=($!)

# === HAProxy, docker-socket-proxy style: reads allowed by path, writes refused ===
haproxy_port=$(free_port)
cat >"$work/haproxy.cfg" <<HAPROXY
global
    maxconn 4000
    nbthread 2
defaults
    mode http
    timeout connect 10s
    timeout client 10m
    timeout server 10m
frontend docker
    bind 127.0.0.1:$haproxy_port
    http-request deny unless METH_GET
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/_ping }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/version }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/info }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/containers }
    http-request allow if { path,url_dec -m reg -i ^(/v[\d\.]+)?/images }
    http-request deny
    default_backend dockerd
backend dockerd
    server socket /var/run/docker.sock
HAPROXY
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)

# === dockgate, as `make run` starts it ===
scripts/run-gateway.sh >"$work/gateway.log" 2>&1 &
pids+=($!)

wait_http() {  # wait_http URL
    for _ in $(seq 150); do curl -sf "$1" >/dev/null && return; sleep 0.2; done
    die "no answer from $1"
}
wait_http "http://127.0.0.1:$nginx_port/_ping"
wait_http "http://127.0.0.1:$haproxy_port/_ping"
wait_http "http://127.0.0.1:2375/_ping"

declare -A rps p50
load() {  # load KEY PATH: one oha run, req/s and p50 (ms) appended
    local key=$1 path=$2 args json
    case $key in
        direct) args=(--unix-socket /var/run/docker.sock "http://docker$path") ;;
        nginx) args=("http://127.0.0.1:$nginx_port$path") ;;
        haproxy) args=("http://127.0.0.1:$haproxy_port$path") ;;
        dockgate) args=("http://127.0.0.1:2375$path") ;;
    esac
    json=$(timeout $((seconds + 30)) "$oha" --no-tui --output-format json -c "$conns" -z "${seconds}s" "${args[@]}") ||
        die "oha failed on $key $path"
    local ok
    ok=$(python3 -c 'import json,sys; d=json.load(sys.stdin); s=d["statusCodeDistribution"]; print(int(s.get("200",0)==sum(s.values())))' <<<"$json")
    [ "$ok" = 1 ] || die "$key $path: not every answer was a 200: $json"
    rps[$key$path]+="$(python3 -c 'import json,sys; print("%.0f" % json.load(sys.stdin)["summary"]["requestsPerSec"])' <<<"$json") "
    p50[$key$path]+="$(python3 -c 'import json,sys; print("%.3f" % (json.load(sys.stdin)["latencyPercentiles"]["p50"]*1000))' <<<"$json") "
}

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
peers=(direct nginx haproxy dockgate)
paths=(/_ping /containers/json)
for r in $(seq "$rounds"); do
    for path in "${paths[@]}"; do
        for key in "${peers[@]}"; do
            log "round $r/$rounds: $key $path"
            load "$key" "$path"
        done
    done
done

echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r); nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*\///'), $(haproxy -v | head -1 | awk '{print $1, $3}'), $("$oha" --version), dockerd $(docker version -f '{{.Server.Version}}')"
echo "- oha -c $conns -z ${seconds}s, $rounds interleaved rounds, medians (every run's figure after it); load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
for path in "${paths[@]}"; do
    echo "| GET $path | req/s | p50 (ms) | req/s vs HAProxy | p50 vs plain nginx |"
    echo "|---|---|---|---|---|"
    h=$(printf %s "${rps[haproxy$path]}" | median); n=$(printf %s "${p50[nginx$path]}" | median)
    for key in "${peers[@]}"; do
        a=$(printf %s "${rps[$key$path]}" | median); b=$(printf %s "${p50[$key$path]}" | median)
        printf '| %s | %s (%s) | %s (%s) | %.2fx | %.2fx |\n' "$key" "$a" "${rps[$key$path]% }" "$b" \
            "${p50[$key$path]% }" "$(echo "$a / $h" | bc -l)" "$(echo "$b / $n" | bc -l)"
    done
    echo
done
