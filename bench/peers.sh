#!/usr/bin/env bash
# dockgate among its peers, in one run: GET /_ping, GET /containers/json and a container's
# inspect (which dockgate's sidecar decides: an engine lookup) under load, a
# `docker run --rm` cycle (a create dockgate mediates), 1 GiB `docker exec` streams both ways,
# and the sidecar's memory under 100 concurrent mediated requests, on
#
#   direct    dockerd's own unix socket
#   nginx     plain nginx proxying to the socket (no decisions at all)
#   haproxy   HAProxy with an endpoint ACL in the style of docker-socket-proxy (path regexes
#             by method: the URL-only proxy people put in front of the socket today)
#   dockgate  the full gateway as `make run` starts it (the module deciding in nginx's
#             worker, the sidecar what needs the engine, with the built-in configuration),
#             tcp://127.0.0.1:2375
#
# The load generator is oha (it speaks to unix sockets too, so the direct column is measured
# the same way): BENCH_CONNS connections for BENCH_SECONDS, interleaved rounds (direct,
# nginx, haproxy, dockgate, direct, ...), medians of req/s and p50. Prints a Markdown report
# on stdout, progress on stderr; stops by itself (every step has a timeout).
#
# Needs: haproxy (apt), oha (cargo install oha), the module and the sidecar built (make).
# HAProxy's ACL lets reads through only (docker-socket-proxy's default), so it has no column
# for creates and streams; plain nginx loses the end of `exec -i` (no half-close): n/a.
# Knobs: BENCH_CONNS (8)  BENCH_SECONDS (10)  BENCH_ROUNDS (3)  BENCH_CYCLES (10 runs a round)
#        BENCH_STREAM_MIB (1024)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
repo=$PWD
conns=${BENCH_CONNS:-8}
seconds=${BENCH_SECONDS:-10}
rounds=${BENCH_ROUNDS:-3}
cycles=${BENCH_CYCLES:-10}
stream_mib=${BENCH_STREAM_MIB:-1024}
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

container=dockgate-bench-peers-$$
cleanup() {
    docker -H unix:///var/run/docker.sock rm -f "$container" >/dev/null 2>&1 || true
    stop_pids
    rm -rf "$work"
}
trap cleanup EXIT

# === plain nginx ===
nginx_port=$(free_port)
# Plain nginx proxying dockerd: the renderer's skeleton with this one server.
mkdir -p "$work/nginx"
cat >"$work/nginx/plain-proxy.conf" <<NGINX
access_log off;
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
NGINX
render_gateway target/release/dockgate none "$work/nginx" --transport-only \
    --error-log "$work/nginx/error.log warn" --http "$work/nginx/plain-proxy.conf" >/dev/null
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

# The container the CLI measurements exec into, and whose inspect a conservative role's
# request acts through (the gateway's sidecar looks it up: reach).
docker -H unix:///var/run/docker.sock run -d --name "$container" --network none --pull never \
    busybox sleep 3600 >/dev/null || die "cannot start $container"

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
paths=(/_ping /containers/json "/containers/$container/json")
for r in $(seq "$rounds"); do
    for path in "${paths[@]}"; do
        for key in "${peers[@]}"; do
            log "round $r/$rounds: $key $path"
            load "$key" "$path"
        done
    done
done

# === the docker CLI: `docker run --rm` cycles and 1 GiB exec streams ===
host_of() {  # host_of KEY: the DOCKER_HOST of a peer
    case $1 in
        direct) echo unix:///var/run/docker.sock ;;
        nginx) echo "tcp://127.0.0.1:$nginx_port" ;;
        haproxy) echo "tcp://127.0.0.1:$haproxy_port" ;;
        dockgate) echo tcp://127.0.0.1:2375 ;;
    esac
}
now() { date +%s%N; }
declare -A cycle stream_in stream_out
run_cycles() {  # run_cycles KEY: seconds per `docker run --rm` cycle, or fails
    local t0 t1
    t0=$(now)
    for _ in $(seq "$cycles"); do
        DOCKER_HOST=$(host_of "$1") timeout 60 docker run --rm --pull never --network none \
            busybox true >/dev/null 2>&1 || return 1
    done
    t1=$(now)
    awk -v a="$t0" -v b="$t1" -v n="$cycles" 'BEGIN { printf "%.3f", (b - a) / 1e9 / n }'
}
stream() {  # stream KEY in|out: MiB/s of one 1 GiB stream, or fails (short count, error)
    local t0 t1 got bytes=$((stream_mib * 1048576))
    t0=$(now)
    if [ "$2" = out ]; then
        got=$(DOCKER_HOST=$(host_of "$1") timeout 120 docker exec "$container" \
            head -c "$bytes" /dev/zero | wc -c) || return 1
    else
        got=$(head -c "$bytes" /dev/zero | DOCKER_HOST=$(host_of "$1") timeout 120 \
            docker exec -i "$container" sh -c 'wc -c') || return 1
    fi
    t1=$(now)
    [ "$(echo "$got" | tr -d '[:space:]')" = "$bytes" ] || return 1
    awk -v a="$t0" -v b="$t1" -v m="$stream_mib" 'BEGIN { printf "%.0f", m / ((b - a) / 1e9) }'
}
cli_peers=(direct nginx dockgate)
for r in $(seq "$rounds"); do
    for key in "${cli_peers[@]}"; do
        log "round $r/$rounds: $key docker run --rm x$cycles, exec streams"
        cycle[$key]+="$(run_cycles "$key" || echo n/a) "
        stream_out[$key]+="$(stream "$key" out || echo n/a) "
        stream_in[$key]+="$(stream "$key" in || echo n/a) "
    done
done

# === the sidecar's memory under 100 concurrent mediated requests ===
sidecar_pid=$(pgrep -f "dockgate serve --config $repo/run/sidecar.toml" | head -1)
[ -n "$sidecar_pid" ] || die "no sidecar of scripts/run-gateway.sh"
kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$sidecar_pid/status"; }
rss_before=$(kib VmRSS)
log "100 concurrent mediated creates (900 KiB bodies each)"
mediated=$(python3 - <<'PY'
import http.client, json, threading, collections
body = json.dumps({"Image": "dockgate-bench-missing:none",
                   "Env": ["K%d=%s" % (i, "v" * 80) for i in range(10000)]}).encode()
codes = collections.Counter()
lock = threading.Lock()
def one(i):
    try:
        c = http.client.HTTPConnection("127.0.0.1", 2375, timeout=120)
        c.request("POST", "/v1.41/containers/create?name=dockgate-bench-mem-%d" % i, body,
                  {"Content-Type": "application/json"})
        code = c.getresponse().status
    except Exception as e:
        code = type(e).__name__
    with lock:
        codes[code] += 1
threads = [threading.Thread(target=one, args=(i,)) for i in range(100)]
for t in threads: t.start()
for t in threads: t.join()
print(" ".join("%s x%d" % kv for kv in sorted(codes.items(), key=str)), "| body %d KiB" % (len(body) // 1024))
PY
)
rss_peak=$(kib VmHWM)
rss_after=$(kib VmRSS)

echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r); nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*\///'), $(haproxy -v | head -1 | awk '{print $1, $3}'), $("$oha" --version), dockerd $(docker version -f '{{.Server.Version}}')"
echo "- oha -c $conns -z ${seconds}s, $rounds interleaved rounds, medians (every run's figure after it); load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
for path in "${paths[@]}"; do
    label="GET $path"
    [ "$path" = "/containers/$container/json" ] && label="GET /containers/{id}/json (dockgate: the sidecar decides, reach)"
    echo "| $label | req/s | p50 (ms) | req/s vs HAProxy | p50 vs plain nginx |"
    echo "|---|---|---|---|---|"
    h=$(printf %s "${rps[haproxy$path]}" | median); n=$(printf %s "${p50[nginx$path]}" | median)
    for key in "${peers[@]}"; do
        a=$(printf %s "${rps[$key$path]}" | median); b=$(printf %s "${p50[$key$path]}" | median)
        printf '| %s | %s (%s) | %s (%s) | %.2fx | %.2fx |\n' "$key" "$a" "${rps[$key$path]% }" "$b" \
            "${p50[$key$path]% }" "$(echo "$a / $h" | bc -l)" "$(echo "$b / $n" | bc -l)"
    done
    echo
done

echo "| docker CLI | \`run --rm\` cycle (s) | exec stdout (MiB/s) | exec -i stdin (MiB/s) | cycle vs direct | stdout vs direct | stdin vs direct |"
echo "|---|---|---|---|---|---|---|"
ratio() {  # ratio A B [invert]: A/B with two decimals, n/a when either is missing
    awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else printf "n/a" }'
}
med() { printf %s "$1" | tr ' ' '\n' | { grep -v n/a || true; } | median; }
dc=$(med "${cycle[direct]}"); do_=$(med "${stream_out[direct]}"); di=$(med "${stream_in[direct]}")
for key in "${cli_peers[@]}"; do
    c=$(med "${cycle[$key]}"); o=$(med "${stream_out[$key]}"); i=$(med "${stream_in[$key]}")
    printf '| %s | %s (%s) | %s (%s) | %s (%s) | %s | %s | %s |\n' "$key" "${c:-n/a}" "${cycle[$key]% }" \
        "${o:-n/a}" "${stream_out[$key]% }" "${i:-n/a}" "${stream_in[$key]% }" \
        "$(ratio "$c" "$dc")" "$(ratio "$o" "$do_")" "$(ratio "$i" "$di")"
done
echo "| haproxy | n/a (its ACL refuses writes) | n/a | n/a | | | |"
echo
echo "Sidecar memory, 100 concurrent mediated creates through dockgate ($mediated): RSS $((rss_before / 1024)) MiB before, peak $((rss_peak / 1024)) MiB, $((rss_after / 1024)) MiB after."

