#!/usr/bin/env bash
# Installs, with apt, the Debian packages dockgate builds and tests with; skips what is there.
set -euo pipefail

packages=(
    nginx nginx-dev             # stock nginx, and the source tree the module builds against
    libclang-dev                # bindgen (nginx-sys)
    libssl-dev libpcre2-dev zlib1g-dev   # nginx.org's stable, built by nginx-src (vendored)
    docker.io                   # dockerd + Debian's 20.10 docker CLI
    busybox-static              # offline test image rootfs
    openssl curl wrk bsdutils   # test certificates, probes, benchmarks, `script` for -t
    ca-certificates             # the registry front-end verifies https mirrors against it
    python3                     # another local user's client in the peer-credential tests
    docker-compose              # compose projects in two tenants (Debian's 1.29)
    docker-registry skopeo      # registry front-end tests: CNCF distribution 2.8, a second client
    dpkg-dev gnupg python3-pip  # package-cache suite: apt repository, signing, pip (test image)
    testssl.sh                  # the TLS listener under a scanner (tls_scan suite)
    lintian                     # make deb: the packages are checked (packages suite)
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}" >&2
    sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's package starts an nginx on :80 that the gateway does not need.
if [ -n "${missing[*]:-}" ] && pgrep -x nginx >/dev/null && [ -f /run/nginx.pid ]; then
    nginx -s quit 2>/dev/null || true
fi
