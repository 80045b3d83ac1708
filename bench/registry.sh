#!/usr/bin/env bash
# dockgate registry benchmark: a 500 MB image (busybox + three layers of random bytes)
# pushed and pulled directly on CNCF distribution vs through the registry front-end
# (stock Debian nginx with nginx-conf/registry-*.conf and the sidecar deciding), and pulled
# from the upstream directly vs from the front-end's warm cache.
#
#   push     `docker push` (the system dockerd) to a fresh, empty registry each time
#   pull     `skopeo copy docker://... dir:` (no dockerd, every blob fetched) from the
#            hosted registry, directly or through the front-end (hosted leg, not cached)
#   cache    `skopeo copy` of the image seeded in the upstream registry: directly from the
#            upstream vs through the front-end once the cache is warm (and the cold miss)
#   dockerd  `docker pull` by the system dockerd of another image (layers dockerd does not
#            have), seeded in the upstream: directly from the upstream, through the
#            front-end with a cold cache, warm, and with the upstream stopped; with the
#            requests that reached the upstream per pull (nginx's $upstream_addr)
# Rounds are interleaved (direct, front-end, direct, ...); medians are reported. Prints a
# Markdown report on stdout, progress on stderr. Stops by itself: every step has a timeout
# and the whole run is bounded by BENCH_DEADLINE.
#
# A loopback upstream is as fast as the cache; a real one is across a network. So the warm
# cache is also compared with the upstream behind nginx's limit_rate (BENCH_UPSTREAM_RATE
# per connection), a stand-in for a remote registry.
#
# Knobs: BENCH_MB (500)  BENCH_ROUNDS (3)  BENCH_STEP_TIMEOUT (300 s)  BENCH_DEADLINE (1500 s)
#        BENCH_UPSTREAM_RATE (50m)  BENCH_DOCKERD_MB (200)
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
repo=$PWD
mb=${BENCH_MB:-500}
rounds=${BENCH_ROUNDS:-3}
step_timeout=${BENCH_STEP_TIMEOUT:-300}
deadline=$(( $(date +%s) + ${BENCH_DEADLINE:-1500} ))
image=dockgate-test/registry-${mb}m:v1
archive=$repo/target/registry-images/registry-${mb}m.tar
sidecar=$repo/target/release/dockgate
work=$(mktemp -d /tmp/dockgate-bench-registry.XXXXXX)
token=bench-token-$$
pids=()
tags=()

# shellcheck source=bench/lib.sh
. bench/lib.sh
for tool in docker skopeo curl docker-registry timeout sha256sum; do
    command -v "$tool" >/dev/null || die "missing $tool (scripts/install-deps.sh)"
done
[ -x "$sidecar" ] || die "missing $sidecar (cargo build --release -p dockgate-sidecar)"
curl -sf --unix-socket /var/run/docker.sock http://d/_ping >/dev/null || die "dockerd does not answer"

cleanup() {
    stop_pids
    for t in "${tags[@]}"; do docker rmi "$t" >/dev/null 2>&1 || true; done
    rm -rf "$work"
}
trap cleanup EXIT

left() { echo $(( deadline - $(date +%s) )); }
bounded() {  # bounded SECONDS CMD...: the step's timeout, never past the deadline
    local t=$1; shift
    (( $(left) > 0 )) || die "deadline reached"
    (( t < $(left) )) || t=$(left)
    timeout --kill-after=10 "$t" "$@"
}

# === the image, built offline once and kept under a fixed tag ===
if ! docker image inspect "$image" >/dev/null 2>&1; then
    log "building $image"
    ctx=$work/ctx; mkdir -p "$ctx"
    printf 'FROM busybox:latest\n' >"$ctx/Dockerfile"
    for i in 0 1 2; do
        head -c $(( mb * 1000000 / 3 )) /dev/urandom >"$ctx/layer$i.bin"
        printf 'COPY layer%s.bin /data/layer%s.bin\n' "$i" "$i" >>"$ctx/Dockerfile"
    done
    DOCKER_BUILDKIT=0 /usr/bin/docker build -q -t "$image" "$ctx" >/dev/null
    rm -rf "$ctx"
fi
if [ ! -f "$archive" ]; then
    mkdir -p "$(dirname "$archive")"
    docker save -o "$archive.tmp$$" "$image" && mv "$archive.tmp$$" "$archive"
fi
bytes=$(docker image inspect -f '{{.Size}}' "$image")

# === registries, sidecar, nginx ===
registry() {  # registry NAME PORT: (re)start with empty storage
    local name=$1 port=$2 dir=$work/$1
    if [ -f "$dir/pid" ]; then kill "$(cat "$dir/pid")" 2>/dev/null || true; sleep 0.5; fi
    rm -rf "$dir"; mkdir -p "$dir"
    printf 'version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s/data\nhttp:\n  addr: 127.0.0.1:%s\n  secret: bench\n' \
        "$dir" "$port" >"$dir/config.yml"
    docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
    echo $! >"$dir/pid"; pids+=($!)
    for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return; sleep 0.1; done
    die "registry $name did not start"
}
direct_port=$(free_port); hosted_port=$(free_port); upstream_port=$(free_port); fe_port=$(free_port)
slow_port=$(free_port); upstream_rate=${BENCH_UPSTREAM_RATE:-50m}
registry direct "$direct_port"; registry hosted "$hosted_port"; registry upstream "$upstream_port"

hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
cat >"$work/sidecar.toml" <<TOML
[server]
listen = "unix:$work/sidecar.sock"
[roles.none]
allow = []
[listeners.loopback]
[[users]]
name = "bench"
role = "none"
token_sha256 = ["$hash"]
[registry]
stats_socket = "$work/stats.sock"
[registry.users.bench]
push = ["bench"]
TOML
RUST_LOG=warn "$sidecar" serve --config "$work/sidecar.toml" 2>"$work/sidecar.log" &
pids+=($!)
for _ in $(seq 100); do [ -S "$work/sidecar.sock" ] && break; sleep 0.1; done

# The front-end from the one renderer (stock nginx, no module), and the upstream as if
# across a network: every answer limited per connection.
mkdir -p "$work/nginx/logs"
cat >"$work/nginx/slow-upstream.conf" <<NGINX
server {
    listen 127.0.0.1:$slow_port;
    location / {
        limit_rate $upstream_rate;
        proxy_pass http://127.0.0.1:$upstream_port;
        proxy_set_header Host \$http_host;
    }
}
NGINX
render_gateway "$sidecar" none "$work/nginx" --config "$work/sidecar.toml" \
    --error-log "$work/nginx/logs/error.log warn" --registry "127.0.0.1:$fe_port,team=bench" \
    --registry-hosted "127.0.0.1:$hosted_port" --registry-upstream "127.0.0.1:$upstream_port" \
    --registry-cache "$work/nginx/cache" --registry-log "$work/nginx/logs/registry.log" \
    --http "$work/nginx/slow-upstream.conf" >/dev/null
start_nginx() {
    /usr/sbin/nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" &
    nginx_pid=$!; pids+=($!)
    for _ in $(seq 100); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$fe_port/v2/")" = 401 ] && return; sleep 0.1
    done
    die "nginx did not start"
}
start_nginx

export DOCKER_CONFIG=$work/docker-config
mkdir -p "$DOCKER_CONFIG"
printf %s "$token" | docker login -u bench --password-stdin "127.0.0.1:$fe_port" >/dev/null 2>&1 ||
    die "docker login on the front-end failed"

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }
runs() { tr '\n' ' ' | sed 's/ $//'; }
declare -A times

measure() {  # measure KEY CMD...: appends the wall time of one run
    local t0 t1
    t0=$(now)
    "$@" >"$work/step.log" 2>&1 || { cat "$work/step.log" >&2; die "failed: $*"; }
    t1=$(now)
    times[$KEY]+="$(echo "$t1 - $t0" | bc -l | xargs printf '%.2f')"$'\n'
}

pull() {  # pull SRC (skopeo to a fresh dir, removed after)
    local dest=$work/pulled
    rm -rf "$dest"
    bounded "$step_timeout" skopeo copy --src-tls-verify=false ${2:+--src-creds "$2"} "docker://$1" "dir:$dest"
    rm -rf "$dest"
}

for r in $(seq "$rounds"); do
    log "round $r/$rounds: push"
    registry direct "$direct_port"; registry hosted "$hosted_port"
    d=127.0.0.1:$direct_port/bench/big:v1; f=127.0.0.1:$fe_port/big:v1
    docker tag "$image" "$d"; docker tag "$image" "$f"; tags+=("$d" "$f")
    KEY=push_direct measure bounded "$step_timeout" docker push "$d"
    KEY=push_frontend measure bounded "$step_timeout" docker push "$f"
    log "round $r/$rounds: pull"
    KEY=pull_direct measure pull "$d"
    KEY=pull_frontend measure pull "$f" "bench:$token"
done

log "cache: seeding the upstream"
bounded "$step_timeout" skopeo copy --dest-tls-verify=false "docker-archive:$archive" \
    "docker://127.0.0.1:$upstream_port/library/big:v1" >/dev/null
KEY=cache_cold measure pull "127.0.0.1:$fe_port/library/big:v1" "bench:$token"
for r in $(seq "$rounds"); do
    log "round $r/$rounds: upstream vs warm cache"
    KEY=upstream_direct measure pull "127.0.0.1:$upstream_port/library/big:v1"
    KEY=cache_warm measure pull "127.0.0.1:$fe_port/library/big:v1" "bench:$token"
    KEY=upstream_slow measure pull "127.0.0.1:$slow_port/library/big:v1"
done
# The layers alone with curl (a client that costs next to nothing): upstream vs warm cache.
digests=$(curl -s -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://127.0.0.1:$upstream_port/v2/library/big/manifests/v1" |
    grep -o '"digest": *"sha256:[0-9a-f]*"' | grep -o 'sha256:[0-9a-f]*')
blobs() {  # blobs BASE [CREDS]: GET every blob of the image to /dev/null
    local d
    for d in $digests; do
        bounded "$step_timeout" curl -sf ${2:+-u "$2"} -o /dev/null "$1/$d" || return 1
    done
}
for r in $(seq "$rounds"); do
    KEY=blobs_upstream measure blobs "http://127.0.0.1:$upstream_port/v2/library/big/blobs"
    KEY=blobs_cache measure blobs "http://127.0.0.1:$fe_port/v2/library/big/blobs" "bench:$token"
done

# === dockerd's own pulls: another image, whose layers dockerd does not have ===
dmb=${BENCH_DOCKERD_MB:-200}
dimage=dockgate-bench/dockerd-pull-$$:v1
log "dockerd: building and seeding a ${dmb} MB image"
ctx=$work/dctx; mkdir -p "$ctx"
printf 'FROM busybox:latest\n' >"$ctx/Dockerfile"
for i in 0 1; do
    head -c $(( dmb * 1000000 / 2 )) /dev/urandom >"$ctx/layer$i.bin"
    printf 'COPY layer%s.bin /data/layer%s.bin\n' "$i" "$i" >>"$ctx/Dockerfile"
done
DOCKER_BUILDKIT=0 bounded "$step_timeout" /usr/bin/docker build -q -t "$dimage" "$ctx" >/dev/null
rm -rf "$ctx"
bounded "$step_timeout" skopeo copy --dest-tls-verify=false "docker-daemon:$dimage" \
    "docker://127.0.0.1:$upstream_port/library/dockerd-pull:v1" >/dev/null
docker rmi "$dimage" >/dev/null
dbytes=$(( dmb * 1000000 ))
up=127.0.0.1:$upstream_port/library/dockerd-pull:v1
fe=127.0.0.1:$fe_port/library/dockerd-pull:v1
tags+=("$up" "$fe")
declare -A fetched
upstream_lines() { grep -c "127.0.0.1:$upstream_port" "$work/nginx/logs/registry.log" || true; }
dpull() {  # dpull KEY REF: one timed dockerd pull, then the image removed; upstream requests counted
    local before after
    before=$(upstream_lines)
    KEY=$1 measure bounded "$step_timeout" docker pull -q "$2"
    after=$(upstream_lines)
    fetched[$1]+="$(( after - before ))"$'\n'
    docker rmi "$2" >/dev/null
}
# A cold cache: nginx restarted on an empty one.
kill -QUIT "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true
rm -rf "$work/nginx/cache"; start_nginx
log "dockerd: cold pull through the front-end"
dpull dockerd_cold "$fe"
for r in $(seq "$rounds"); do
    log "round $r/$rounds: dockerd pulls, upstream directly vs warm cache"
    KEY=dockerd_direct measure bounded "$step_timeout" docker pull -q "$up"
    docker rmi "$up" >/dev/null
    dpull dockerd_warm "$fe"
done
log "dockerd: the upstream stopped"
kill "$(cat "$work/upstream/pid")"; sleep 1
for r in $(seq "$rounds"); do
    dpull dockerd_stopped "$fe"
done

hits=$(curl -s --unix-socket "$work/sidecar.sock" http://s/_dockgate/metrics |
    awk '/^dockgate_registry_cache_answers_total\{kind="blob",cache="HIT"\}/ {print $2}')

mbps() { awk -v b="$bytes" -v t="$1" 'BEGIN {printf "%.0f", b / t / 1e6}'; }
row() {  # row LABEL KEY_DIRECT KEY_VIA
    local a b
    a=$(printf %s "${times[$2]}" | median); b=$(printf %s "${times[$3]}" | median)
    printf '| %s | %s s (%s MB/s); runs: %s | %s s (%s MB/s), **%.2fx** direct; runs: %s |\n' \
        "$1" "$a" "$(mbps "$a")" "$(printf %s "${times[$2]}" | runs)" \
        "$b" "$(mbps "$b")" "$(echo "$a / $b" | bc -l)" "$(printf %s "${times[$3]}" | runs)"
}

echo "- $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r); nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*\///'), $(docker-registry --version | awk '{print $NF}'), skopeo $(skopeo --version | awk '{print $NF}'), dockerd $(docker version -f '{{.Server.Version}}')"
echo "- image $image: $bytes bytes (docker's uncompressed size), busybox + 3 random layers; $rounds rounds, medians; load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- speed = image size / wall time (the push compresses layers in dockerd, so it is CPU-bound)"
echo
echo "| figure | direct | through the front-end |"
echo "|---|---|---|"
row "docker push, empty registry" push_direct push_frontend
row "skopeo pull, hosted registry" pull_direct pull_frontend
row "skopeo pull: upstream directly vs front-end warm cache" upstream_direct cache_warm
row "curl, every blob: upstream directly vs front-end warm cache" blobs_upstream blobs_cache
row "skopeo pull: upstream at ${upstream_rate^^}B/s per connection vs front-end warm cache" upstream_slow cache_warm
echo "| skopeo pull through the front-end, cold cache (one run) | | $(printf %s "${times[cache_cold]}" | median) s |"
echo
dmbps() { awk -v b="$dbytes" -v t="$1" 'BEGIN {printf "%.0f", b / t / 1e6}'; }
drow() {  # drow LABEL KEY: dockerd pull times and the requests that reached the upstream
    local a n
    a=$(printf %s "${times[$2]}" | median)
    n=$(printf %s "${fetched[$2]:-}" | runs)
    printf '| %s | %s s (%s MB/s); runs: %s | %s |\n' "$1" "$a" "$(dmbps "$a")" \
        "$(printf %s "${times[$2]}" | runs)" "${n:-every request (no cache)}"
}
echo "dockerd's own pulls (\`docker pull\`, ${dmb} MB of new layers, removed after each pull):"
echo
echo "| dockerd pull | time | requests that reached the upstream, per pull |"
echo "|---|---|---|"
drow "from the upstream directly (no front-end)" dockerd_direct
drow "through the front-end, cold cache" dockerd_cold
drow "through the front-end, warm cache" dockerd_warm
drow "through the front-end, upstream stopped" dockerd_stopped
echo
echo "blob cache hits counted by the sidecar: ${hits:-0}; nginx error log: $(grep -c '\[error\]\|\[crit\]\|\[emerg\]' "$work/nginx/logs/error.log" || true) errors"
