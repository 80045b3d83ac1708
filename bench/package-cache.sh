#!/usr/bin/env bash
# dockgate package cache benchmark, in one run (see bench/README.md, "package-cache.sh"):
#   1. one large .deb over HTTPS: local origin vs the cache cold and warm (curl on the host);
#   2. a replay of BENCH_JOBS CI-like jobs (fresh containers created through the full gateway
#      running apt-get update/install and pip download) with and without the cache, against
#      an unthrottled local origin and one limited to BENCH_ORIGIN_RATE per connection (a
#      stand-in for a remote mirror), with the hit ratio the sidecar counted.
# Runs the `bench_package_cache` case of tests/tests/package_cache.rs (the suite's harness:
# origins, cache, gateway, all on loopback) and appends its report and this command to
# bench/RESULTS.md. Knobs: BENCH_JOBS (20) BENCH_FILE_MB (128) BENCH_ORIGIN_RATE (10m)
# BENCH_TIMEOUT (1200 s: the whole run is bounded).
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_JOBS=${BENCH_JOBS:-20} BENCH_FILE_MB=${BENCH_FILE_MB:-128} BENCH_ORIGIN_RATE=${BENCH_ORIGIN_RATE:-10m}
[ -x target/release/dockgate ] || cargo build --locked --release -p dockgate-sidecar
out=$(mktemp /tmp/dockgate-bench-pkgcache.XXXXXX)
trap 'rm -f "$out"' EXIT
start=$(date +%s)
DOCKGATE_BENCH_OUT=$out timeout "${BENCH_TIMEOUT:-1200}" \
    cargo test --locked -p dockgate-tests --release --test package_cache -- \
    --ignored --exact bench_package_cache --nocapture >&2
{
    echo
    echo "## Package cache ($(date -u +%Y-%m-%d), $(nproc) CPUs, nginx $(/usr/sbin/nginx -v 2>&1 | sed 's/.*nginx\///'))"
    echo
    echo "Command: \`BENCH_JOBS=$BENCH_JOBS BENCH_FILE_MB=$BENCH_FILE_MB BENCH_ORIGIN_RATE=$BENCH_ORIGIN_RATE bench/package-cache.sh\` ($(( $(date +%s) - start )) s)"
    echo
    cat "$out"
} | tee -a bench/RESULTS.md
