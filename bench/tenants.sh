#!/usr/bin/env bash
# dockgate tenants benchmark: what namespaces cost on a busy engine.
#
# Makes BENCH_CONTAINERS (1000) containers across BENCH_TENANTS (10) tenants on dockerd (every
# other one running `sleep`), then times `docker ps` and `docker ps -a`:
#   - an admin on dockerd's socket (sees all of them),
#   - one tenant's user through the full gateway (nginx + module + sidecar: label filter on
#     the list, answer demangled by the sidecar), which sees its 1/10th.
# Each figure is the median of BENCH_REPEAT (20) runs of the docker CLI, in milliseconds.
# Then the cost of a tenant's build: the same Dockerfile (FROM busybox, COPY, two RUNs)
# built BENCH_BUILDS (5) times by an admin on dockerd's socket and by the tenant through the
# gateway (context rewritten by the sidecar, one LABEL step more per stage), without the
# cache and again with it.
# Prints a Markdown report on stdout; progress on stderr. Loopback and unix sockets only;
# the containers use --network none and are removed at the end.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
repo=$PWD

total=${BENCH_CONTAINERS:-1000}
tenants=${BENCH_TENANTS:-10}
repeat=${BENCH_REPEAT:-20}
dockerd_sock=/var/run/docker.sock
nginx_bin=/usr/sbin/nginx
module=$repo/build/debian/ngx_http_dockgate_module.so
sidecar=$repo/target/release/dockgate

# shellcheck source=bench/lib.sh
. bench/lib.sh
for f in "$module" "$sidecar"; do
    [ -e "$f" ] || die "$f missing: run make module sidecar"
done

tmp=$(mktemp -d /tmp/dockgate-bench-tenants.XXXXXX)
prefix=bt$$n
pids=()
cleanup() {
    stop_pids
    # In small batches: hundreds of containers exiting at once, while other clients use
    # the engine, have deadlocked dockerd 20.10's network controller here (libnetwork
    # network lock; only a dockerd restart recovered).
    log "removing the benchmark's containers"
    DOCKER_HOST=unix://$dockerd_sock docker ps -aq --filter "name=^$prefix" |
        xargs -r -n 10 env DOCKER_HOST=unix://$dockerd_sock docker rm -f >/dev/null 2>&1 || true
    DOCKER_HOST=unix://$dockerd_sock docker images -aq --filter "label=dockgate.tenant=${prefix}0" |
        xargs -r env DOCKER_HOST=unix://$dockerd_sock docker rmi -f >/dev/null 2>&1 || true
    DOCKER_HOST=unix://$dockerd_sock docker images -aq --filter "label=dockgate.bench=$prefix" |
        xargs -r env DOCKER_HOST=unix://$dockerd_sock docker rmi -f >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

cp "$module" "$tmp/module.so"
cp "$sidecar" "$tmp/dockgate"

# --- the engine's population: TENANT.cN, labelled, as the gateway makes them -------------
log "creating $total containers across $tenants tenants"
export DOCKER_HOST=unix://$dockerd_sock
for i in $(seq 0 $((total - 1))); do
    t=$prefix$((i % tenants))
    echo "create --network none --label dockgate.tenant=$t --name $t.c$i busybox sleep 3600"
done | xargs -P 4 -L 1 docker >/dev/null
DOCKER_HOST=unix://$dockerd_sock docker ps -aq --filter "name=^$prefix" | awk 'NR % 2' |
    xargs -r -n 10 docker start >/dev/null
unset DOCKER_HOST

# --- sidecar and nginx -------------------------------------------------------------------
token=bench-token
hash=$("$tmp/dockgate" hash-token "$token")
sed -e "s#unix:/run/dockgate/sidecar.sock#unix:$tmp/sidecar.sock#" \
    -e "s#\"/run/dockgate/docker.sock\"#\"$tmp/docker.sock\"#" \
    -e "s#unix:/run/dockgate/private/#unix:$tmp/private/#" \
    sidecar/decision/src/default.toml >"$tmp/sidecar.toml"
cat >>"$tmp/sidecar.toml" <<TOML

[tenants.${prefix}0]

[[users]]
name = "tenant-user"
role = "developer"
tenant = "${prefix}0"
token_sha256 = ["$hash"]
TOML
RUST_LOG=warn "$tmp/dockgate" serve --config "$tmp/sidecar.toml" 2>"$tmp/sidecar.log" &
pids+=($!)
port=$(free_port)
render_gateway "$tmp/dockgate" "$tmp/module.so" "$tmp" --config "$tmp/sidecar.toml" \
    --access-log off --listen "loopback=127.0.0.1:$port" >/dev/null
for _ in $(seq 1 50); do [ -S "$tmp/sidecar.sock" ] && break; sleep 0.1; done
"$nginx_bin" -p "$tmp" -c "$tmp/nginx.conf" </dev/null >"$tmp/nginx.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/_ping" >/dev/null 2>&1 && break
    sleep 0.1
done
mkdir -p "$tmp/cli"
echo "{\"HttpHeaders\":{\"Authorization\":\"Bearer $token\"}}" >"$tmp/cli/config.json"

# --- timings --------------------------------------------------------------------------------
median_ms() { # DOCKER_HOST DOCKER_CONFIG ARGS...
    local host=$1 config=$2
    shift 2
    for _ in $(seq 1 "$repeat"); do
        local start end
        start=$(date +%s%N)
        DOCKER_HOST=$host DOCKER_CONFIG=$config docker "$@" >/dev/null || die "docker $* failed via $host"
        end=$(date +%s%N)
        echo $(((end - start) / 1000))
    done | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1000 }'
}
count() { DOCKER_HOST=$1 DOCKER_CONFIG=$2 docker "${@:3}" -q | wc -l; }
direct=unix://$dockerd_sock
gateway=tcp://127.0.0.1:$port
mkdir -p "$tmp/admin"
log "timing docker ps ($repeat runs each)"
n_direct_ps=$(count "$direct" "$tmp/admin" ps)
n_direct_all=$(count "$direct" "$tmp/admin" ps -a)
n_gw_ps=$(count "$gateway" "$tmp/cli" ps)
n_gw_all=$(count "$gateway" "$tmp/cli" ps -a)
d_ps=$(median_ms "$direct" "$tmp/admin" ps)
g_ps=$(median_ms "$gateway" "$tmp/cli" ps)
d_all=$(median_ms "$direct" "$tmp/admin" ps -a)
g_all=$(median_ms "$gateway" "$tmp/cli" ps -a)
# The same view asked of dockerd directly: what the gateway itself adds.
f_ps=$(median_ms "$direct" "$tmp/admin" ps --filter "label=dockgate.tenant=${prefix}0")
f_all=$(median_ms "$direct" "$tmp/admin" ps -a --filter "label=dockgate.tenant=${prefix}0")

# --- builds ---------------------------------------------------------------------------------
builds=${BENCH_BUILDS:-5}
mkdir -p "$tmp/ctx"
head -c 1048576 /dev/urandom >"$tmp/ctx/blob"
printf 'FROM busybox\nCOPY blob /blob\nRUN md5sum /blob > /sum\nRUN cat /sum\n' >"$tmp/ctx/Dockerfile"
build_ms() { # DOCKER_HOST DOCKER_CONFIG TAG EXTRA
    local host=$1 config=$2 tag=$3 extra=$4
    for _ in $(seq 1 "$builds"); do
        local start end
        start=$(date +%s%N)
        # shellcheck disable=SC2086
        DOCKER_BUILDKIT=0 DOCKER_HOST=$host DOCKER_CONFIG=$config docker build -q $extra -t "$tag" "$tmp/ctx" \
            >/dev/null 2>&1 || die "docker build failed via $host"
        end=$(date +%s%N)
        echo $(((end - start) / 1000))
    done | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f", v[int((NR + 1) / 2)] / 1000 }'
}
log "timing builds ($builds runs each)"
# The admin's builds carry a label of the benchmark's, so that every image they leave goes.
b_admin_cold=$(build_ms "$direct" "$tmp/admin" "$prefix-admin-build" "--no-cache --label dockgate.bench=$prefix")
b_tenant_cold=$(build_ms "$gateway" "$tmp/cli" tenant-build --no-cache)
b_admin_warm=$(build_ms "$direct" "$tmp/admin" "$prefix-admin-build" "--label dockgate.bench=$prefix")
b_tenant_warm=$(build_ms "$gateway" "$tmp/cli" tenant-build "")

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
cat <<REPORT
- machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM, Linux $(uname -r)
- nginx $("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///') (Debian) + module, worker_processes 2; sidecar $(git log -1 --format=%h); dockerd $(docker version --format '{{.Server.Version}}' 2>/dev/null), docker CLI $(docker version --format '{{.Client.Version}}' 2>/dev/null)
- engine: $total containers of $tenants tenants (every other one running), plus whatever else dockerd holds

| command | admin, dockerd's socket | tenant, full gateway | gateway / admin | same label filter on dockerd's socket | gateway / filtered |
|---|---|---|---|---|---|
| \`docker ps\` | $d_ps ms ($n_direct_ps listed) | $g_ps ms ($n_gw_ps listed) | $(ratio "$g_ps" "$d_ps")x | $f_ps ms | $(ratio "$g_ps" "$f_ps")x |
| \`docker ps -a\` | $d_all ms ($n_direct_all listed) | $g_all ms ($n_gw_all listed) | $(ratio "$g_all" "$d_all")x | $f_all ms | $(ratio "$g_all" "$f_all")x |

| build (1 MiB context, 4 steps; median of $builds) | admin, dockerd's socket | tenant, full gateway | tenant / admin |
|---|---|---|---|
| \`docker build --no-cache\` | $b_admin_cold ms | $b_tenant_cold ms | $(ratio "$b_tenant_cold" "$b_admin_cold")x |
| \`docker build\` (all steps cached) | $b_admin_warm ms | $b_tenant_warm ms | $(ratio "$b_tenant_warm" "$b_admin_warm")x |
REPORT
