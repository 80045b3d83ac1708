#!/usr/bin/env bash
# dockgate CI jobs benchmark: what a job's own socket costs at its start and at its end.
#
# Start: `docker create` of a job container (busybox, a build volume), median of
# BENCH_REPEAT (20), in milliseconds:
#   - an admin on dockerd's socket,
#   - a runner through the full gateway whose role has no job_socket (a tenant's create),
#   - the same runner with job_socket (the job's socket opened, its directory mounted, the
#     /var/run/docker.sock symlink written into the container).
# Clean-up: a job makes 20 objects through its own socket (10 containers, 5 of them running,
# 4 volumes, 3 networks, 3 image tags); the runner removes the job container, and the time
# until the job's namespace is empty on the engine is measured (polled every 20 ms), against
# an admin removing the same 20 objects with the docker CLI on dockerd's socket. Median of
# BENCH_ROUNDS (3).
# Prints a Markdown report on stdout; progress on stderr. Loopback and unix sockets only;
# containers use --network none and everything made is removed at the end.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
repo=$PWD

repeat=${BENCH_REPEAT:-20}
rounds=${BENCH_ROUNDS:-3}
dockerd_sock=/var/run/docker.sock
nginx_bin=/usr/sbin/nginx
module=$repo/build/debian/ngx_http_dockgate_module.so
sidecar=$repo/target/release/dockgate

# shellcheck source=bench/lib.sh
. bench/lib.sh
for f in "$module" "$sidecar"; do
    [ -e "$f" ] || die "$f missing: run make module sidecar"
done

tmp=$(mktemp -d /tmp/dockgate-bench-jobs.XXXXXX)
prefix=bj$$
tenant=${prefix}r
pids=()
direct=unix://$dockerd_sock
cleanup() {
    stop_pids
    log "removing the benchmark's objects"
    export DOCKER_HOST=$direct
    docker ps -aq --filter "name=^$prefix" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker ps -aq --filter "name=^$tenant\." | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker ps -aq --filter "label=dockgate.tenant" --filter "name=^job" | xargs -r docker rm -f >/dev/null 2>&1 || true
    docker volume ls -q | grep -E "^($prefix|$tenant\.)" | xargs -r docker volume rm >/dev/null 2>&1 || true
    docker network ls -q --filter "name=^$prefix" | xargs -r docker network rm >/dev/null 2>&1 || true
    docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "^$prefix" | xargs -r docker rmi >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cp "$module" "$tmp/module.so"
cp "$sidecar" "$tmp/dockgate"

# --- two gateways: the runner's role without and with job_socket -----------------------------
token=bench-runner
hash=$("$tmp/dockgate" hash-token "$token")
start_gateway() { # NAME JOB_SOCKET_LINE; sets port_NAME
    local name=$1 job_line=$2 dir=$tmp/$1
    mkdir -p "$dir"
    sed -e "s#unix:/run/dockgate/sidecar.sock#unix:$dir/sidecar.sock#" \
        -e "s#\"/run/dockgate/docker.sock\"#\"$dir/docker.sock\"#" \
        -e "s#unix:/run/dockgate/private/#unix:$dir/private/#" \
        sidecar/decision/src/default.toml >"$dir/sidecar.toml"
    cat >>"$dir/sidecar.toml" <<TOML

[tenants.$tenant]

[[users]]
name = "runner"
role = "runner"
tenant = "$tenant"
token_sha256 = ["$hash"]

[roles.runner]
allow = ["read", "write", "exec", "image", "volume", "network"]
policies = ["conservative"]
$job_line

[roles.ci-job]
allow = ["read", "write", "exec", "build", "image", "network", "volume"]
policies = ["conservative"]

[jobs]
dir = "$dir/jobs"
TOML
    RUST_LOG=warn "$tmp/dockgate" serve --config "$dir/sidecar.toml" 2>"$dir/sidecar.log" &
    pids+=($!)
    local port
    port=$(free_port)
    render_gateway "$tmp/dockgate" "$tmp/module.so" "$dir" --config "$dir/sidecar.toml" \
        --access-log off --listen "loopback=127.0.0.1:$port" >/dev/null
    for _ in $(seq 1 50); do [ -S "$dir/sidecar.sock" ] && break; sleep 0.1; done
    "$nginx_bin" -p "$dir" -c "$dir/nginx.conf" </dev/null >"$dir/nginx.out" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/_ping" >/dev/null 2>&1 && break
        sleep 0.1
    done
    eval "port_$name=$port"
}
# The plain gateway's role has no job_socket, so [jobs] is unused there; it stays valid.
start_gateway plain ""
start_gateway jobs 'job_socket = "ci-job"'
mkdir -p "$tmp/cli" "$tmp/admin"
echo "{\"HttpHeaders\":{\"Authorization\":\"Bearer $token\"}}" >"$tmp/cli/config.json"
plain=tcp://127.0.0.1:$port_plain
jobs=tcp://127.0.0.1:$port_jobs

ms_since() { echo $((($(date +%s%N) - $1) / 1000)); }
median() { sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1000 }'; }

# --- start: docker create ---------------------------------------------------------------------
create_ms() { # DOCKER_HOST DOCKER_CONFIG NAME_PREFIX
    local host=$1 config=$2 name=$3 i
    DOCKER_HOST=$host DOCKER_CONFIG=$config docker volume create "${name}vol" >/dev/null
    for i in $(seq 1 "$repeat"); do
        local start
        start=$(date +%s%N)
        DOCKER_HOST=$host DOCKER_CONFIG=$config docker create --pull never --network none \
            -v "${name}vol:/builds" --name "$name$i" busybox sleep 60 >/dev/null ||
            die "docker create failed via $host"
        ms_since "$start"
    done | median
    for i in $(seq 1 "$repeat"); do
        DOCKER_HOST=$host DOCKER_CONFIG=$config docker rm -f "$name$i" >/dev/null
    done
}
log "timing job container creates ($repeat each)"
c_direct=$(create_ms "$direct" "$tmp/admin" "${prefix}d")
c_plain=$(create_ms "$plain" "$tmp/cli" "${prefix}p")
c_job=$(create_ms "$jobs" "$tmp/cli" "${prefix}j")

# --- clean-up: 20 objects ---------------------------------------------------------------------
make_twenty() { # DOCKER_HOST DOCKER_CONFIG NAME_PREFIX
    local host=$1 config=$2 p=$3 i
    export DOCKER_HOST=$host DOCKER_CONFIG=$config
    for i in 1 2 3 4 5; do docker run -d --pull never --network none --name "${p}run$i" busybox sleep 60 >/dev/null; done
    for i in 1 2 3 4 5; do docker create --pull never --network none --name "${p}new$i" busybox true >/dev/null; done
    for i in 1 2 3 4; do docker volume create "${p}vol$i" >/dev/null; done
    for i in 1 2 3; do docker network create "${p}net$i" >/dev/null; done
    for i in 1 2 3; do docker tag busybox "${p}img$i:1"; done
    unset DOCKER_HOST DOCKER_CONFIG
}
cleanup_direct_ms() {
    local p=${prefix}c$1
    make_twenty "$direct" "$tmp/admin" "$p"
    local start
    start=$(date +%s%N)
    export DOCKER_HOST=$direct
    # As the gateway does: stopped first, with the same 2 s grace.
    docker stop -t 2 "${p}run1" "${p}run2" "${p}run3" "${p}run4" "${p}run5" >/dev/null
    docker rm -v "${p}run1" "${p}run2" "${p}run3" "${p}run4" "${p}run5" \
        "${p}new1" "${p}new2" "${p}new3" "${p}new4" "${p}new5" >/dev/null
    docker volume rm "${p}vol1" "${p}vol2" "${p}vol3" "${p}vol4" >/dev/null
    docker network rm "${p}net1" "${p}net2" "${p}net3" >/dev/null
    docker rmi "${p}img1:1" "${p}img2:1" "${p}img3:1" >/dev/null
    unset DOCKER_HOST
    ms_since "$start"
}
left_of() { # TENANT: what the engine still holds of it
    local t=$1
    export DOCKER_HOST=$direct
    {
        docker ps -aq --filter "label=dockgate.tenant=$t"
        docker volume ls -q --filter "label=dockgate.tenant=$t"
        docker network ls -q --filter "label=dockgate.tenant=$t"
        docker images --format '{{.Repository}}' | grep "^dockgate-$t/" || true
    } | wc -l
    unset DOCKER_HOST
}
cleanup_job_ms() {
    local name=${prefix}job$1
    DOCKER_HOST=$jobs DOCKER_CONFIG=$tmp/cli docker run -d --pull never --network none \
        --name "$name" busybox sleep 600 >/dev/null
    local key
    key=$(DOCKER_HOST=$direct docker inspect -f '{{index .Config.Labels "dockgate.job"}}' "$tenant.$name")
    make_twenty "unix://$tmp/jobs/jobs/$key/docker.sock" "$tmp/admin" x
    [ "$(left_of "job$key")" -eq 20 ] || die "the job made $(left_of "job$key") objects, not 20"
    local start
    start=$(date +%s%N)
    DOCKER_HOST=$jobs DOCKER_CONFIG=$tmp/cli docker rm -f "$name" >/dev/null
    local removed
    removed=$(ms_since "$start")
    for _ in $(seq 1 1500); do
        [ "$(left_of "job$key")" -eq 0 ] && break
        sleep 0.02
    done
    [ "$(left_of "job$key")" -eq 0 ] || die "job $key was not cleaned up"
    echo "$(ms_since "$start") $removed"
}
log "timing clean-ups ($rounds rounds each)"
d_clean=$(for r in $(seq 1 "$rounds"); do cleanup_direct_ms "$r"; done | median)
job_runs=$(for r in $(seq 1 "$rounds"); do cleanup_job_ms "$r"; done)
j_clean=$(echo "$job_runs" | awk '{ print $1 }' | median)
j_rm=$(echo "$job_runs" | awk '{ print $2 }' | median)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cat <<REPORT
- machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)
- nginx $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///') (Debian) + module, worker_processes 2; sidecar $(git log -1 --format=%h); dockerd $(docker version --format '{{.Server.Version}}' 2>/dev/null), docker CLI $(docker version --format '{{.Client.Version}}' 2>/dev/null)

| \`docker create\` of a job container (median of $repeat) | time | / direct |
|---|---|---|
| admin, dockerd's socket | $c_direct ms | 1.00x |
| runner through the gateway, no job_socket (a tenant's create) | $c_plain ms | $(ratio "$c_plain" "$c_direct")x |
| runner through the gateway, job_socket (socket, mount, symlink) | $c_job ms | $(ratio "$c_job" "$c_direct")x |

| removing 20 objects (10 containers, 5 running; 4 volumes, 3 networks, 3 tags; median of $rounds) | time | / direct |
|---|---|---|
| admin, docker CLI on dockerd's socket (\`stop -t 2\`, \`rm\`, \`volume rm\`, ...) | $d_clean ms | 1.00x |
| a job's, by the gateway: from \`docker rm -f\` of the job container to an empty namespace | $j_clean ms | $(ratio "$j_clean" "$d_clean")x |
| (of which the runner's \`docker rm -f\` itself) | $j_rm ms | |
REPORT
