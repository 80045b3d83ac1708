#!/usr/bin/env bash
# dockgate benchmark: the Docker API directly on dockerd's unix socket vs through nginx.
#
#   direct      /var/run/docker.sock
#   gateway     Debian nginx + ngx_http_dockgate_module, the shipped includes, TCP loopback
#   stock       the same nginx and config without the module (no `dockgate` directives)
#   gw-1.28     nginx.org 1.28 (build/vendored) + module, same config (skipped if not built)
#
# Figures: 1 GiB `docker exec` stdout and stdin streams (median of $BENCH_RUNS runs, byte
# counts verified), sequential keep-alive latency of GET /_ping and GET /containers/json
# (same Python client on every endpoint), and wrk req/s + latency on the TCP endpoints.
# Prints a Markdown report on stdout; progress goes to stderr.
#
# Knobs (environment): BENCH_BYTES (default 1073741824), BENCH_RUNS (3),
# BENCH_LAT_REQUESTS (5000), BENCH_WRK_SECONDS (10), BENCH_WRK_CONNS (16),
# BENCH_STREAM_TIMEOUT (seconds per stream, 180), BENCH_VENDORED (1: include gw-1.28).
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
repo=$PWD

bytes=${BENCH_BYTES:-1073741824}
runs=${BENCH_RUNS:-3}
lat_requests=${BENCH_LAT_REQUESTS:-5000}
wrk_seconds=${BENCH_WRK_SECONDS:-10}
wrk_conns=${BENCH_WRK_CONNS:-16}
stream_timeout=${BENCH_STREAM_TIMEOUT:-180}
want_vendored=${BENCH_VENDORED:-1}
dockerd_sock=/var/run/docker.sock
debian_nginx=/usr/sbin/nginx
debian_module=$repo/build/debian/ngx_http_dockgate_module.so
vendored_nginx=$repo/build/vendored/nginx
vendored_module=$repo/build/vendored/ngx_http_dockgate_module.so
container=dockgate-bench-$$

log() { printf 'bench: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

for tool in docker curl python3 wrk timeout; do
    command -v "$tool" >/dev/null || die "missing $tool"
done
[ -x "$debian_nginx" ] || die "missing $debian_nginx"
[ -f "$debian_module" ] || die "missing $debian_module (scripts/build-module.sh debian)"
curl -sf --unix-socket "$dockerd_sock" http://d/_ping >/dev/null ||
    die "dockerd does not answer on $dockerd_sock (scripts/start-dockerd.sh)"
DOCKER_HOST=unix://$dockerd_sock docker image inspect busybox:latest >/dev/null 2>&1 ||
    die "no busybox:latest image (scripts/test-images.sh)"

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
tmp=$(mktemp -d /tmp/dockgate-bench.XXXXXX)
nginx_pids=()
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local pid
    for pid in "${nginx_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${nginx_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    DOCKER_HOST=unix://$dockerd_sock docker rm -f "$container" >/dev/null 2>&1 || true
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- helpers in Python
cat >"$tmp/freeports.py" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
PY

# Sequential keep-alive GETs on one connection, unix socket or TCP; raw HTTP/1.1 so the
# client's own cost stays small and identical for every endpoint.
cat >"$tmp/latency.py" <<'PY'
import socket, sys, time

def connect(target):
    if target.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(target[5:])
    else:
        host, port = target.rsplit(":", 1)
        s = socket.create_connection((host, int(port)))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

class Conn:
    def __init__(self, target):
        self.s = connect(target)
        self.buf = b""

    def fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def until(self, sep):
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out, self.buf = self.buf[:i], self.buf[i + len(sep):]
                return out
            self.fill()

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def get(self, path):
        self.s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: docker\r\nUser-Agent: dockgate-bench\r\n\r\n")
        head = self.until(b"\r\n\r\n").split(b"\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for line in head[1:]:
            k, _, v = line.partition(b":")
            headers[k.strip().lower()] = v.strip().lower()
        if b"content-length" in headers:
            body = self.take(int(headers[b"content-length"]))
        elif headers.get(b"transfer-encoding") == b"chunked":
            body = b""
            while True:
                size = int(self.until(b"\r\n").split(b";")[0], 16)
                if size == 0:
                    while self.until(b"\r\n"):
                        pass
                    break
                body += self.take(size)
                self.take(2)
        else:
            raise ValueError("response without length")
        if headers.get(b"connection") == b"close":
            raise ConnectionError("server closed keep-alive")
        return status, body

def main():
    target, path, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3])
    c = Conn(target)
    for _ in range(min(200, n)):  # warm-up: upstream keepalive pool, caches
        status, _ = c.get(path)
        if status != 200:
            raise SystemExit("HTTP %d" % status)
    lat = []
    t0 = time.perf_counter()
    for _ in range(n):
        a = time.perf_counter()
        status, _ = c.get(path)
        lat.append(time.perf_counter() - a)
        if status != 200:
            raise SystemExit("HTTP %d" % status)
    total = time.perf_counter() - t0
    lat.sort()
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1e6
    # p50_us p99_us req_per_s
    print("%.0f %.0f %.0f" % (pct(0.50), pct(0.99), n / total))

main()
PY

# ---------------------------------------------------------------- nginx instances
read -r port_gw port_stock port_vendored < <(python3 "$tmp/freeports.py" 3)

# start_nginx NAME BINARY MODULE(or "") PORT
start_nginx() {
    local name=$1 bin=$2 module=$3 port=$4
    local dir=$tmp/$name
    mkdir -p "$dir/logs"
    local http_conf=$repo/nginx-conf/dockgate-http.conf
    local api_conf=$repo/nginx-conf/docker-api.conf
    local load=""
    if [ -n "$module" ]; then
        load="load_module $module;"
    else
        # Stock nginx: the shipped includes without the module's directives and variables.
        sed -e 's/\$dockgate_hijack/-/g; s/\$dockgate_half_close/-/g' \
            "$http_conf" >"$dir/dockgate-http-stock.conf"
        grep -Ev '^[[:space:]]*(dockgate|dockgate_status)([[:space:]]|;)' \
            "$api_conf" >"$dir/docker-api-stock.conf"
        http_conf=$dir/dockgate-http-stock.conf
        api_conf=$dir/docker-api-stock.conf
    fi
    cat >"$dir/nginx.conf" <<CONF
# Written by bench/run.sh ($name).
$load
user root root;
daemon off;
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/logs/error.log notice;
events { worker_connections 4096; }
http {
    client_body_temp_path $dir/tmp_body;
    proxy_temp_path $dir/tmp_proxy;
    fastcgi_temp_path $dir/tmp_fastcgi;
    uwsgi_temp_path $dir/tmp_uwsgi;
    scgi_temp_path $dir/tmp_scgi;
    include $http_conf;
    include $repo/nginx-conf/dockerd-upstream.conf;
    server {
        listen 127.0.0.1:$port;
        include $api_conf;
    }
}
CONF
    "$bin" -p "$dir" -c "$dir/nginx.conf" -t -q 2>"$dir/logs/configtest.log" || {
        cat "$dir/logs/configtest.log" >&2
        die "nginx config test failed for $name"
    }
    "$bin" -p "$dir" -c "$dir/nginx.conf" </dev/null >"$dir/logs/stdout.log" 2>&1 &
    nginx_pids+=("$!")
    local i
    for i in $(seq 1 100); do
        if curl -sf "http://127.0.0.1:$port/_ping" >/dev/null 2>&1; then
            log "$name: nginx $("$bin" -v 2>&1 | sed 's/.*nginx\///') on 127.0.0.1:$port"
            return 0
        fi
        kill -0 "${nginx_pids[-1]}" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/logs/error.log" "$dir/logs/stdout.log" >&2 2>/dev/null || true
    die "$name: nginx did not answer on 127.0.0.1:$port (try $i)"
}

names=(direct gateway stock)
declare -A host label target
host[direct]=unix://$dockerd_sock
label[direct]="direct (unix socket)"
target[direct]=unix:$dockerd_sock

start_nginx gateway "$debian_nginx" "$debian_module" "$port_gw"
host[gateway]=tcp://127.0.0.1:$port_gw
label[gateway]="gateway: nginx $("$debian_nginx" -v 2>&1 | sed 's/.*nginx\///') + module"
target[gateway]=127.0.0.1:$port_gw

start_nginx stock "$debian_nginx" "" "$port_stock"
host[stock]=tcp://127.0.0.1:$port_stock
label[stock]="stock nginx $("$debian_nginx" -v 2>&1 | sed 's/.*nginx\///'), no module"
target[stock]=127.0.0.1:$port_stock

if [ "$want_vendored" = 1 ] && [ -x "$vendored_nginx" ] && [ -f "$vendored_module" ]; then
    start_nginx vendored "$vendored_nginx" "$vendored_module" "$port_vendored"
    names+=(vendored)
    host[vendored]=tcp://127.0.0.1:$port_vendored
    label[vendored]="gateway: nginx $("$vendored_nginx" -v 2>&1 | sed 's/.*nginx\///') + module"
    target[vendored]=127.0.0.1:$port_vendored
else
    log "vendored nginx 1.28 + module not built or disabled: column skipped"
fi

DOCKER_HOST=${host[direct]} docker run -d --network none --name "$container" busybox:latest \
    sleep 3600 >/dev/null
log "container $container started"

# ---------------------------------------------------------------- stream measurements
# Each run prints "<seconds> <bytes> <CLI exit status>" (bytes: "-" when no count came back)
# and returns nonzero when the stream failed (short count, CLI error, timeout).
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

stream_out_once() {
    local name=$1 t0 t1 got rc=0
    t0=$(now)
    got=$(DOCKER_HOST=${host[$name]} timeout "$stream_timeout" \
        docker exec "$container" sh -c "head -c $bytes /dev/zero" 2>"$tmp/err" | wc -c) || rc=$?
    t1=$(now)
    # pipefail: rc is the CLI's (or timeout's: 124) status.
    echo "$(secs "$t0" "$t1") $got $rc"
    [ "$rc" = 0 ] && [ "$got" = "$bytes" ]
}

stream_in_once() {
    local name=$1 t0 t1 got rc=0
    t0=$(now)
    got=$(head -c "$bytes" /dev/zero | DOCKER_HOST=${host[$name]} timeout "$stream_timeout" \
        docker exec -i "$container" sh -c 'wc -c' 2>"$tmp/err") || rc=$?
    t1=$(now)
    got=$(echo "$got" | tr -d '[:space:]')
    echo "$(secs "$t0" "$t1") ${got:--} $rc"
    [ "$rc" = 0 ] && [ "$got" = "$bytes" ]
}

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
mbps() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f", b / s / 1e6 }'; }
ratio() { awk -v d="$1" -v s="$2" 'BEGIN { printf "%.2fx", d / s }'; }

declare -A result
# measure KIND(out|in) NAME: fills result[KIND,NAME] (text) and result[KIND,NAME,s] (median s)
measure() {
    local kind=$1 name=$2 i line s got rc ok=0 fails=() times=() codes=()
    for i in $(seq 1 "$runs"); do
        if line=$("stream_${kind}_once" "$name"); then
            read -r s got rc <<<"$line"
            ok=$((ok + 1))
            times+=("$s")
            log "$kind $name run $i: $s s, $got bytes"
        else
            read -r s got rc <<<"$line"
            fails+=("$got")
            codes+=("$rc")
            log "$kind $name run $i: FAILED after $s s, received $got bytes, CLI exit $rc;" \
                "stderr: $(tr '\n' ' ' <"$tmp/err" | cut -c1-200)"
        fi
    done
    local exits
    exits=$(printf '%s\n' "${codes[@]}" | sort -u | paste -sd/ -)
    if [ "$ok" = "$runs" ]; then
        result[$kind,$name,s]=$(printf '%s\n' "${times[@]}" | median)
    elif [ "$ok" = 0 ]; then
        result[$kind,$name]="fails: $(printf '%s, ' "${fails[@]}" | sed 's/, $//') of $bytes bytes received, CLI exit $exits (${runs}/${runs} runs)"
    else
        result[$kind,$name]="fails in $((runs - ok))/${runs} runs (received: $(printf '%s, ' "${fails[@]}" | sed 's/, $//'), CLI exit $exits)"
        result[$kind,$name,s]=$(printf '%s\n' "${times[@]}" | median)
    fi
}

for kind in out in; do
    for name in "${names[@]}"; do
        log "stream $kind, $name: $runs x $bytes bytes"
        measure "$kind" "$name"
    done
done

# ---------------------------------------------------------------- latency and wrk
paths=(/_ping /containers/json)
for path in "${paths[@]}"; do
    for name in "${names[@]}"; do
        log "latency $path, $name: $lat_requests sequential keep-alive requests"
        if out=$(python3 "$tmp/latency.py" "${target[$name]}" "$path" "$lat_requests" 2>"$tmp/err"); then
            result[lat,$path,$name]=$out
        else
            result[lat,$path,$name]="fail"
            log "latency $path $name failed: $(tail -1 "$tmp/err")"
        fi
    done
done

for path in "${paths[@]}"; do
    for name in "${names[@]}"; do
        [ "$name" = direct ] && continue
        log "wrk $path, $name: -t2 -c$wrk_conns -d${wrk_seconds}s"
        if wrk -t2 -c"$wrk_conns" -d"${wrk_seconds}s" --latency \
            "http://${target[$name]}$path" >"$tmp/wrk" 2>&1; then
            result[wrk,$path,$name]=$(awk '
                /Requests\/sec/ { rps = $2 }
                /^ +50%/ { p50 = $2 } /^ +99%/ { p99 = $2 }
                /Non-2xx|Socket errors/ { err = err " " $0 }
                END { printf "%.0f req/s, p50 %s, p99 %s%s", rps, p50, p99, (err ? " (" err ")" : "") }
            ' "$tmp/wrk")
        else
            result[wrk,$path,$name]="fail"
            log "wrk failed: $(tail -3 "$tmp/wrk")"
        fi
    done
done

# ---------------------------------------------------------------- report
stream_cell() {
    local kind=$1 name=$2 s d cell
    s=${result[$kind,$name,s]:-}
    d=${result[$kind,direct,s]:-}
    if [ -n "$s" ]; then
        cell="$(mbps "$s") MB/s ($s s)"
        if [ "$name" != direct ] && [ -n "$d" ]; then
            cell="$cell, $(ratio "$d" "$s") direct"
        fi
        [ -n "${result[$kind,$name]:-}" ] && cell="$cell; ${result[$kind,$name]}"
    else
        cell=${result[$kind,$name]}
    fi
    echo "$cell"
}

lat_cell() {
    local path=$1 name=$2 v p50 p99 rps d50
    v=${result[lat,$path,$name]}
    [ "$v" = fail ] && { echo fail; return; }
    read -r p50 p99 rps <<<"$v"
    local cell="p50 ${p50} µs, p99 ${p99} µs, ${rps} req/s"
    if [ "$name" != direct ] && [ "${result[lat,$path,direct]}" != fail ]; then
        read -r d50 _ <<<"${result[lat,$path,direct]}"
        cell="$cell (p50 $(printf '%+d' $((p50 - d50))) µs vs direct)"
    fi
    echo "$cell"
}

load_end=$(cut -d' ' -f1-3 /proc/loadavg)
cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "# dockgate bench, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) CPUs ($cpu_model), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
echo "- nginx: Debian $("$debian_nginx" -v 2>&1 | sed 's/.*nginx\///')$(
    [ -x "$vendored_nginx" ] && echo ", vendored $("$vendored_nginx" -v 2>&1 | sed 's/.*nginx\///')"), worker_processes 2"
echo "- dockerd $(DOCKER_HOST=${host[direct]} docker version -f '{{.Server.Version}}' 2>/dev/null), docker CLI $(docker version -f '{{.Client.Version}}' 2>/dev/null)"
echo "- load average at start: $load_start; at end: $load_end"
echo "- streams: $bytes bytes, $runs runs each, median; latency: $lat_requests requests after 200 warm-up, one connection"
echo
{
    header="| figure |"
    rule="|---|"
    for name in "${names[@]}"; do
        header="$header ${label[$name]} |"
        rule="$rule---|"
    done
    echo "$header"
    echo "$rule"
    mib=$(awk -v b="$bytes" 'BEGIN { printf "%g MiB", b / 1048576 }')
    row="| exec stdout, $mib (median of $runs) |"
    for name in "${names[@]}"; do row="$row $(stream_cell out "$name") |"; done
    echo "$row"
    row="| exec stdin, $mib (median of $runs) |"
    for name in "${names[@]}"; do row="$row $(stream_cell in "$name") |"; done
    echo "$row"
    for path in "${paths[@]}"; do
        row="| GET $path, $lat_requests sequential keep-alive |"
        for name in "${names[@]}"; do row="$row $(lat_cell "$path" "$name") |"; done
        echo "$row"
    done
    for path in "${paths[@]}"; do
        row="| GET $path, wrk -t2 -c$wrk_conns -d${wrk_seconds}s |"
        for name in "${names[@]}"; do
            if [ "$name" = direct ]; then
                row="$row n/a (wrk has no unix sockets) |"
            else
                row="$row ${result[wrk,$path,$name]} |"
            fi
        done
        echo "$row"
    done
}
