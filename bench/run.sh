#!/usr/bin/env bash
# dockgate benchmark: the Docker API directly on dockerd's unix socket vs through nginx.
#
#   direct    /var/run/docker.sock
#   gateway   Debian nginx + ngx_http_dockgate_module with the shipped includes, TCP loopback
#   stock     the same nginx and config without the module (no `dockgate` directives)
#   vendored  nginx.org 1.28 (build/vendored) + module, same config (skipped if not built)
#
# Figures:
#   1. 1 GiB `docker exec` stdout stream, bytes counted on the host.
#   2. 1 GiB `docker exec -i` stdin stream, bytes counted by `wc -c` in the container.
#   3. GET /_ping and GET /containers/json: sequential keep-alive latency with the same
#      Python client on every endpoint (unix socket or TCP), and wrk on the TCP endpoints.
# Every measurement is interleaved across endpoints (round 1: direct, gateway, stock, ...;
# round 2: ...) so background load drifts over all columns alike. Streams: median of
# $BENCH_RUNS rounds, byte counts verified (a short count is a failure and is reported).
# Prints a Markdown report on stdout; progress goes to stderr.
#
# Knobs (environment):
#   BENCH_BYTES (1073741824)  BENCH_RUNS (3)  BENCH_STREAM_TIMEOUT (180 s per stream)
#   BENCH_LAT_REQUESTS (5000 per endpoint and path)  BENCH_LAT_ROUNDS (5)
#   BENCH_WRK_SECONDS (10)  BENCH_WRK_CONNS (16)  BENCH_VENDORED (1: add the nginx 1.28 column)
#   BENCH_QUIET_WAIT (60: seconds to wait, before each measurement, for the machine to be
#   under 20 % busy; 0: don't)  BENCH_QUIET_BUDGET (600: total seconds of such waiting)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
repo=$PWD

bytes=${BENCH_BYTES:-1073741824}
runs=${BENCH_RUNS:-3}
stream_timeout=${BENCH_STREAM_TIMEOUT:-180}
lat_requests=${BENCH_LAT_REQUESTS:-5000}
lat_rounds=${BENCH_LAT_ROUNDS:-5}
wrk_seconds=${BENCH_WRK_SECONDS:-10}
wrk_conns=${BENCH_WRK_CONNS:-16}
want_vendored=${BENCH_VENDORED:-1}
quiet_wait=${BENCH_QUIET_WAIT:-60}
quiet_budget=${BENCH_QUIET_BUDGET:-600}
dockerd_sock=/var/run/docker.sock
debian_nginx=/usr/sbin/nginx
debian_module=$repo/build/debian/ngx_http_dockgate_module.so
vendored_nginx=$repo/build/vendored/nginx
vendored_module=$repo/build/vendored/ngx_http_dockgate_module.so
container=dockgate-bench-$$

# shellcheck source=bench/lib.sh
. "$repo/bench/lib.sh"
nginx_version() { "$1" -v 2>&1 | sed 's/.*nginx\///'; }

for tool in docker curl python3 wrk timeout awk; do
    command -v "$tool" >/dev/null || die "missing $tool"
done
[ -x "$debian_nginx" ] || die "missing $debian_nginx"
[ -f "$debian_module" ] || die "missing $debian_module (scripts/build-module.sh debian)"
curl -sf --unix-socket "$dockerd_sock" http://d/_ping >/dev/null ||
    die "dockerd does not answer on $dockerd_sock (scripts/start-dockerd.sh)"
DOCKER_HOST=unix://$dockerd_sock docker image inspect busybox:latest >/dev/null 2>&1 ||
    die "no busybox:latest image (scripts/test-images.sh)"

tmp=$(mktemp -d /tmp/dockgate-bench.XXXXXX)
nginx_pids=()
container_started=0
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${nginx_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${nginx_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$container_started" = 1 ]; then
        DOCKER_HOST=unix://$dockerd_sock docker rm -f "$container" >/dev/null 2>&1 || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- machine load
# Busy share of all CPUs over one second, in percent.
cpu_busy() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {
        split(a, x, " "); split(b, y, " ")
        t = y[2] - x[2]; printf "%.0f", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}
# Before each measurement: wait (up to $quiet_wait s, $quiet_budget s in all) until the
# machine is under 20 % busy, so other work (a test suite, a build) disturbs the figures
# less. Records the busy share each measurement started with in $busy.
busy=0
busy_seen=()
quiet_gate() {
    busy=$(cpu_busy)
    if [ "$quiet_wait" -gt 0 ] && [ "$busy" -gt 20 ] && [ "$quiet_budget" -gt 0 ]; then
        log "machine ${busy}% busy; waiting up to ${quiet_wait}s for it to calm down"
        local t0=$SECONDS wait=$((quiet_wait < quiet_budget ? quiet_wait : quiet_budget))
        while [ $((SECONDS - t0)) -lt "$wait" ]; do
            busy=$(cpu_busy)
            [ "$busy" -le 20 ] && break
        done
        quiet_budget=$((quiet_budget - (SECONDS - t0)))
    fi
    busy_seen+=("$busy")
}
quiet_gate
busy_start=$busy
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# Private copies of the module(s) and the vendored nginx: `scripts/build-module.sh` rewrites
# build/ in place, and a running nginx whose mapped module is overwritten crashes.
mkdir -p "$tmp/bin"
cp "$debian_module" "$tmp/bin/debian-module.so"
cp "$repo/target/release/dockgate" "$tmp/bin/dockgate" || die "no target/release/dockgate (make sidecar)"
module_note="debian $(sha256sum "$debian_module" | cut -c1-12) ($(date -u -r "$debian_module" '+%H:%M UTC'))"
debian_module=$tmp/bin/debian-module.so
if [ "$want_vendored" = 1 ] && [ -x "$vendored_nginx" ] && [ -f "$vendored_module" ]; then
    cp "$vendored_nginx" "$tmp/bin/nginx-vendored"
    cp "$vendored_module" "$tmp/bin/vendored-module.so"
    module_note="$module_note, vendored $(sha256sum "$vendored_module" | cut -c1-12) ($(date -u -r "$vendored_module" '+%H:%M UTC'))"
    vendored_nginx=$tmp/bin/nginx-vendored
    vendored_module=$tmp/bin/vendored-module.so
else
    want_vendored=0
fi

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

# Sequential keep-alive GETs, raw HTTP/1.1 so the client's own cost stays small and the
# same for every endpoint. One connection per endpoint; endpoints are taken in turn, ROUNDS
# times N/ROUNDS requests. A connection the server closes (nginx: keepalive_requests) is
# reopened outside the timed request. Prints per endpoint "TARGET p50_us p99_us req_per_s
# reopens", or "TARGET FAIL reason" (the other endpoints go on).
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
        self.target = target
        self.s = None
        self.reopens = -1
        self.reopen()

    def reopen(self):
        if self.s:
            self.s.close()
        self.s = connect(self.target)
        self.buf = b""
        self.reopens += 1

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
        """Returns (status, body, server_closes)."""
        self.s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: docker\r\n"
                       b"User-Agent: dockgate-bench\r\n\r\n")
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
            raise ValueError("response without a length")
        return status, body, headers.get(b"connection") == b"close"

    def timed_get(self, path):
        try:
            a = time.perf_counter()
            status, _, closes = self.get(path)
            t = time.perf_counter() - a
        except (ConnectionError, BrokenPipeError):
            # Idle connection closed by the server between rounds: reopen, time a retry.
            self.reopen()
            a = time.perf_counter()
            status, _, closes = self.get(path)
            t = time.perf_counter() - a
        if status != 200:
            raise ValueError("HTTP %d" % status)
        if closes:
            self.reopen()
        return t

def main():
    path, n, rounds = sys.argv[1].encode(), int(sys.argv[2]), int(sys.argv[3])
    targets = sys.argv[4:]
    conns, failed = {}, {}

    def guard(t, f):
        try:
            f()
        except Exception as e:  # one endpoint failing must not stop the others
            failed[t] = "%s: %s" % (type(e).__name__, e)

    for t in targets:
        def open_and_warm(t=t):
            c = Conn(t)
            for _ in range(200):  # warm-up: upstream keepalive pool, caches
                c.timed_get(path)
            c.reopens = 0
            conns[t] = c
        guard(t, open_and_warm)
    lat = {t: [] for t in targets}
    busy = {t: 0.0 for t in targets}
    per_round = max(1, n // rounds)
    for _ in range(rounds):
        for t in targets:
            if t in failed:
                continue
            def one_round(t=t):
                t0 = time.perf_counter()
                try:
                    for _ in range(per_round):
                        lat[t].append(conns[t].timed_get(path))
                finally:
                    busy[t] += time.perf_counter() - t0
            guard(t, one_round)
    for t in targets:
        if t in failed:
            print("%s FAIL after %d requests: %s" % (t, len(lat[t]), failed[t]))
            continue
        l = sorted(lat[t])
        pct = lambda p: l[min(len(l) - 1, int(p * len(l)))] * 1e6
        print("%s %.0f %.0f %.0f %d" % (t, pct(0.50), pct(0.99), len(l) / busy[t],
                                        conns[t].reopens))

main()
PY

# ---------------------------------------------------------------- nginx instances
# A snapshot of nginx-conf/, so every instance runs the same configuration.
mkdir -p "$tmp/conf"
for f in dockgate-http.conf docker-api-common.conf docker-api.conf; do
    [ -f "$repo/nginx-conf/$f" ] || die "missing nginx-conf/$f"
    cp "$repo/nginx-conf/$f" "$tmp/conf/"
done
conf_note="nginx-conf/ at $(git -C "$repo" log -1 --format=%h -- nginx-conf 2>/dev/null || echo '?')"
git -C "$repo" diff --quiet HEAD -- nginx-conf 2>/dev/null || conf_note="$conf_note (with uncommitted changes)"
read -r port_gw port_stock port_vendored < <(python3 "$tmp/freeports.py" 3)

declare -A host label target master
names=(direct)
host[direct]=unix://$dockerd_sock
label[direct]="direct (unix socket)"
target[direct]=unix:$dockerd_sock

# start_nginx NAME BINARY MODULE(empty: stock nginx) PORT LABEL
start_nginx() {
    local name=$1 bin=$2 module=$3 port=$4
    local dir=$tmp/$name
    local conf=$tmp/conf
    mkdir -p "$dir/logs"
    if [ -z "$module" ]; then
        # Stock nginx: the shipped includes without the module's directives and variables
        # (as tests/src/nginx.rs does it).
        conf=$dir/conf
        mkdir -p "$conf"
        cp "$tmp/conf/"*.conf "$conf/"
        # shellcheck disable=SC2016 # literal nginx variables
        sed -i -e 's/\$dockgate_hijack/-/g; s/\$dockgate_half_close/-/g' "$conf/dockgate-http.conf"
        local f
        for f in docker-api-common.conf docker-api.conf; do
            grep -Ev '^[[:space:]]*(dockgate |dockgate_status)' "$tmp/conf/$f" >"$conf/$f"
        done
    fi
    # The one renderer; the server is the transport-only one (docker-api.conf, no policy
    # sidecar), one access log line per request as `make run` has it.
    render_gateway "$tmp/bin/dockgate" "${module:-none}" "$dir" --transport-only \
        --includes "$conf" --dockerd "$dockerd_sock" --error-log "$dir/logs/error.log notice" \
        --access-log "$dir/logs/dockgate-access.log dockgate" --listen "=127.0.0.1:$port" >/dev/null
    if ! "$bin" -p "$dir" -c "$dir/nginx.conf" -t -q 2>"$dir/logs/configtest.log"; then
        cat "$dir/logs/configtest.log" >&2
        die "$name: nginx config test failed"
    fi
    "$bin" -p "$dir" -c "$dir/nginx.conf" </dev/null >"$dir/logs/stdout.log" 2>&1 &
    local pid=$!
    nginx_pids+=("$pid")
    local _
    for _ in $(seq 1 100); do
        if curl -sf "http://127.0.0.1:$port/_ping" >/dev/null 2>&1; then
            log "$name: nginx $(nginx_version "$bin") answers on 127.0.0.1:$port"
            names+=("$name")
            master[$name]=$pid
            host[$name]=tcp://127.0.0.1:$port
            target[$name]=127.0.0.1:$port
            label[$name]=$5
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    cat "$dir/logs/error.log" "$dir/logs/stdout.log" >&2 2>/dev/null || true
    die "$name: nginx did not answer on 127.0.0.1:$port"
}

debian_version=$(nginx_version "$debian_nginx")
start_nginx gateway "$debian_nginx" "$debian_module" "$port_gw" \
    "gateway: nginx $debian_version + module"
start_nginx stock "$debian_nginx" "" "$port_stock" "stock nginx $debian_version, no module"
vendored_version=""
if [ "$want_vendored" = 1 ]; then
    vendored_version=$(nginx_version "$vendored_nginx")
    start_nginx vendored "$vendored_nginx" "$vendored_module" "$port_vendored" \
        "gateway: nginx $vendored_version + module"
else
    log "vendored nginx 1.28 + module not built or disabled: no column for it"
fi

start_container() {
    DOCKER_HOST=${host[direct]} docker run -d --network none --name "$container" busybox:latest \
        sleep 3600 >/dev/null
    container_started=1
}
start_container
log "container $container started"

# After a stream, the container must be back to its one `sleep`: when a tunnel breaks (stock
# nginx), dockerd lets the exec run on and discards its output, which would steal CPU from
# the next measurement. Wait up to 10 s, then replace the container.
replaced=0
settle_container() {
    local _ n
    for _ in $(seq 1 50); do
        n=$(DOCKER_HOST=${host[direct]} docker top "$container" -o pid 2>/dev/null | tail -n +2 | wc -l)
        [ "$n" -le 1 ] && return 0
        sleep 0.2
    done
    log "execs still running in $container after 10 s: replacing the container"
    DOCKER_HOST=${host[direct]} docker rm -f "$container" >/dev/null
    start_container
    replaced=$((replaced + 1))
}

# CPU seconds (user + system) used so far by the worker processes of nginx NAME (0: direct).
workers_cpu() {
    local pid=${master[$1]:-}
    [ -n "$pid" ] || {
        echo 0
        return
    }
    local hz
    hz=$(getconf CLK_TCK)
    # /proc/PID/stat: pid (comm) state ppid ... utime(14) stime(15); comm may hold spaces.
    { cat /proc/[0-9]*/stat 2>/dev/null || true; } |
        awk -v ppid="$pid" -v hz="$hz" '{ sub(/^.*\) /, "") } $2 == ppid { t += $12 + $13 }
            END { printf "%.2f", t / hz }'
}

# ---------------------------------------------------------------- stream measurements
# One stream; prints "<seconds> <bytes> <CLI exit status> <nginx worker CPU s>" (bytes: "-"
# when no count came back) and fails when the stream did (short count, CLI error, timeout).
now() { date +%s%N; }
stream_once() {
    local kind=$1 name=$2 t0 t1 c0 c1 got rc=0
    c0=$(workers_cpu "$name")
    t0=$(now)
    if [ "$kind" = out ]; then
        got=$(DOCKER_HOST=${host[$name]} timeout "$stream_timeout" \
            docker exec "$container" sh -c "head -c $bytes /dev/zero" 2>"$tmp/err" | wc -c) || rc=$?
    else
        got=$(head -c "$bytes" /dev/zero | DOCKER_HOST=${host[$name]} timeout "$stream_timeout" \
            docker exec -i "$container" sh -c 'wc -c' 2>"$tmp/err") || rc=$?
    fi
    t1=$(now)
    c1=$(workers_cpu "$name")
    got=$(echo "$got" | tr -d '[:space:]')
    awk -v a="$t0" -v b="$t1" -v g="${got:--}" -v r="$rc" -v c0="$c0" -v c1="$c1" \
        'BEGIN { printf "%.3f %s %s %.2f\n", (b - a) / 1e9, g, r, c1 - c0 }'
    [ "$rc" = 0 ] && [ "$got" = "$bytes" ]
}

declare -A times fails exits cpus
for kind in out in; do
    for round in $(seq 1 "$runs"); do
        for name in "${names[@]}"; do
            quiet_gate
            if line=$(stream_once "$kind" "$name"); then
                read -r s got rc cpu <<<"$line"
                times[$kind,$name]+="$s "
                cpus[$kind,$name]+="$cpu "
                log "stream $kind, round $round, $name: $s s, $got bytes, nginx workers ${cpu} CPU s" \
                    "(machine ${busy}% busy before)"
            else
                read -r s got rc cpu <<<"$line"
                fails[$kind,$name]+="$got "
                exits[$kind,$name]+="$rc "
                log "stream $kind, round $round, $name: FAILED after $s s, received $got of" \
                    "$bytes bytes, CLI exit $rc (machine ${busy}% busy before);" \
                    "stderr: $(tr '\n' ' ' <"$tmp/err" | cut -c1-200)"
            fi
            settle_container
        done
    done
done

# ---------------------------------------------------------------- latency and wrk
paths=(/_ping /containers/json)
declare -A lat wrkres
targets=()
for name in "${names[@]}"; do targets+=("${target[$name]}"); done
for path in "${paths[@]}"; do
    quiet_gate
    log "latency GET $path (machine ${busy}% busy): $lat_requests sequential keep-alive requests per endpoint, $lat_rounds rounds"
    if out=$(python3 "$tmp/latency.py" "$path" "$lat_requests" "$lat_rounds" "${targets[@]}" 2>"$tmp/err"); then
        for name in "${names[@]}"; do
            lat[$path,$name]=$(awk -v t="${target[$name]}" '$1 == t { $1 = ""; sub(/^ /, ""); print }' <<<"$out")
        done
    else
        log "latency GET $path failed: $(tail -1 "$tmp/err")"
    fi
done

# wrk: one run per TCP endpoint and path (direct is a unix socket, which wrk cannot open).
for path in "${paths[@]}"; do
    for name in "${names[@]}"; do
        [ "$name" = direct ] && continue
        quiet_gate
        log "wrk GET $path, $name (machine ${busy}% busy): -t2 -c$wrk_conns -d${wrk_seconds}s"
        if wrk -t2 -c"$wrk_conns" -d"${wrk_seconds}s" --latency \
            "http://${target[$name]}$path" >"$tmp/wrk" 2>&1; then
            wrkres[$path,$name]=$(awk '
                function us(v) {
                    if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000
                    if (v ~ /s$/) return v * 1e6; return v }
                /Requests\/sec/ { rps = $2 }
                /^ +50%/ { p50 = us($2) } /^ +99%/ { p99 = us($2) }
                /Non-2xx|Socket errors/ { sub(/^ +/, ""); err = err "; " $0 }
                END {
                    if (rps + 0 == 0) printf "**fails**: no responses%s", err
                    else printf "%.0f req/s, p50 %.0f µs, p99 %.0f µs%s", rps, p50, p99, err }
            ' "$tmp/wrk")
        else
            wrkres[$path,$name]="wrk failed"
            log "wrk failed: $(tail -3 "$tmp/wrk")"
        fi
    done
done
busy_end=$(cpu_busy)
# Did an nginx crash or complain while measuring? (A crashed worker is replaced silently.)
declare -A health
for name in "${names[@]}"; do
    [ "$name" = direct ] && continue
    errlog=$tmp/$name/logs/error.log
    crashes=$(grep -c 'exited on signal' "$errlog" 2>/dev/null || true)
    alerts=$(grep -cE '\[(alert|crit|emerg)\]' "$errlog" 2>/dev/null || true)
    if ! kill -0 "${master[$name]}" 2>/dev/null; then
        health[$name]="**master died**"
    elif [ "${crashes:-0}" -gt 0 ] || [ "${alerts:-0}" -gt 0 ]; then
        health[$name]="**${crashes:-0} worker crashes, ${alerts:-0} alert/crit lines**: $(grep -E '\[(alert|crit|emerg)\]|exited on signal' "$errlog" | head -2 | cut -c1-160 | tr '\n' ' ')"
    else
        health[$name]="ok"
    fi
done
busy_max=$(printf '%s\n' "${busy_seen[@]}" | sort -n | tail -1)
busy_over=$(printf '%s\n' "${busy_seen[@]}" | awk '$1 > 20' | wc -l)
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'; }
mib=$(awk -v b="$bytes" 'BEGIN { printf "%g MiB", b / 1048576 }')

stream_cell() {
    local kind=$1 name=$2 s d cell="" n_ok n_fail
    n_ok=$(wc -w <<<"${times[$kind,$name]:-}")
    n_fail=$(wc -w <<<"${fails[$kind,$name]:-}")
    if [ "$n_ok" -gt 0 ]; then
        s=$(median <<<"${times[$kind,$name]}")
        cell=$(awk -v b="$bytes" -v s="$s" 'BEGIN { printf "%.0f MB/s (%.2f s)", b / s / 1e6, s }')
        if [ "$name" != direct ] && [ -n "${times[$kind,direct]:-}" ]; then
            d=$(median <<<"${times[$kind,direct]}")
            cell="$cell, $(awk -v d="$d" -v s="$s" 'BEGIN { printf "%.2fx", d / s }') direct"
        fi
        if [ -n "${master[$name]:-}" ]; then
            cell="$cell, nginx $(median <<<"${cpus[$kind,$name]}") CPU s"
        fi
        cell="$cell; runs: $(sed 's/ *$//; s/ / s, /g' <<<"${times[$kind,$name]}") s"
    fi
    if [ "$n_fail" -gt 0 ]; then
        [ -n "$cell" ] && cell="$cell; "
        cell="${cell}**fails $n_fail/$runs**: received $(sed 's/ *$//; s/ /, /g' <<<"${fails[$kind,$name]}")"
        cell="$cell of $bytes bytes, CLI exit $(tr ' ' '\n' <<<"${exits[$kind,$name]}" | awk 'NF' | sort -u | paste -sd/ -)"
    fi
    echo "$cell"
}

lat_cell() {
    local path=$1 name=$2 p50 p99 rps reopens d50 cell
    [ -n "${lat[$path,$name]:-}" ] || {
        echo "failed"
        return
    }
    if [[ ${lat[$path,$name]} == FAIL* ]]; then
        echo "**fails**: ${lat[$path,$name]#FAIL }"
        return
    fi
    read -r p50 p99 rps reopens <<<"${lat[$path,$name]}"
    cell="p50 $p50 µs, p99 $p99 µs, $rps req/s"
    if [ "$name" != direct ] && [ -n "${lat[$path,direct]:-}" ] &&
        [[ ${lat[$path,direct]} != FAIL* ]]; then
        read -r d50 _ <<<"${lat[$path,direct]}"
        cell="$cell; **p50 $(printf '%+d' $((p50 - d50))) µs** vs direct"
    fi
    [ "$reopens" -gt 0 ] && cell="$cell (reconnects: $reopens)"
    echo "$cell"
}

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "# dockgate bench, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo
echo "- machine: $(nproc) CPUs (${cpu_model:-unknown}), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)"
echo "- nginx: Debian $debian_version${vendored_version:+, nginx.org $vendored_version (build/vendored)}; worker_processes 2; nginx.conf by dockgate nginx-conf; $conf_note: dockgate-http.conf, docker-api-common.conf + docker-api.conf (transport only, no policy sidecar); access log on"
echo "- dockerd $(DOCKER_HOST=${host[direct]} docker version -f '{{.Server.Version}}' 2>/dev/null), docker CLI $(docker version -f '{{.Client.Version}}' 2>/dev/null)"
echo "- machine busy (all CPUs, 1 s sample): ${busy_start}% at start, ${busy_end}% at end; before measurements: max ${busy_max}%, over 20% before $busy_over of ${#busy_seen[@]}; load average at start $load_start, at end $load_end"
echo "- modules (sha256, built): $module_note; repository at $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "- streams: $mib each, $runs rounds, median (interleaved: each round takes every endpoint in turn); container replaced $replaced times because a broken stream's exec ran on"
echo "- latency: one keep-alive connection per endpoint, 200 warm-up requests, then $lat_requests requests in $lat_rounds interleaved rounds"
echo
header="| figure |"
rule="|---|"
for name in "${names[@]}"; do
    header="$header ${label[$name]} |"
    rule="$rule---|"
done
echo "$header"
echo "$rule"
row="| \`docker exec\` stdout, $mib |"
for name in "${names[@]}"; do row="$row $(stream_cell out "$name") |"; done
echo "$row"
row="| \`docker exec -i\` stdin, $mib |"
for name in "${names[@]}"; do row="$row $(stream_cell in "$name") |"; done
echo "$row"
for path in "${paths[@]}"; do
    row="| GET $path, sequential keep-alive (Python client) |"
    for name in "${names[@]}"; do row="$row $(lat_cell "$path" "$name") |"; done
    echo "$row"
done
for path in "${paths[@]}"; do
    row="| GET $path, \`wrk -t2 -c$wrk_conns -d${wrk_seconds}s\` |"
    for name in "${names[@]}"; do
        if [ "$name" = direct ]; then
            row="$row n/a (wrk speaks TCP only) |"
        else
            row="$row ${wrkres[$path,$name]:-} |"
        fi
    done
    echo "$row"
done
row="| nginx error log at the end |"
for name in "${names[@]}"; do row="$row ${health[$name]:-n/a} |"; done
echo "$row"
