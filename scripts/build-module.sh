#!/usr/bin/env bash
# Builds ngx_http_dockgate_module.so for one nginx:
#   debian    the nginx of Debian's `nginx` package, from the tree `nginx-dev` installs
#   vendored  nginx.org's stable from the `nginx-src` crate; its nginx binary is kept too
# Results: build/<flavor>/ngx_http_dockgate_module.so (and build/vendored/nginx).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
flavor=${1:?usage: build-module.sh debian|vendored}
out=$repo/build/$flavor
mkdir -p "$out"

# Replaces $2 with $1 by rename, never in place: a running nginx maps the old file, and
# rewriting its pages under it crashes the workers. Unchanged files are left alone.
install_file() {
    cmp -s "$1" "$2" && return 0
    cp "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
}

case $flavor in
debian)
    src=/usr/share/nginx/src
    [ -f "$src/conf_flags" ] || { echo "build-module: $src/conf_flags missing: apt-get install nginx-dev" >&2; exit 1; }
    tree=$repo/build/nginx-debian
    # Configure a copy of Debian's tree with Debian's own flags, once per nginx-dev version.
    stamp=$(dpkg-query -W -f='${Version}' nginx-dev)
    if [ "$(cat "$tree/stamp" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "$tree" && mkdir -p "$tree"
        cp -r "$src" "$tree/src"
        (
            cd "$tree/src"
            # shellcheck disable=SC1091
            . ./conf_flags
            ./configure "${NGX_CONF_FLAGS[@]}" --builddir="$tree/build" >"$tree/configure.log" 2>&1
        ) || { tail -20 "$tree/configure.log" >&2; exit 1; }
        echo "$stamp" >"$tree/stamp"
    fi
    NGINX_SOURCE_DIR=$tree/src NGINX_BUILD_DIR=$tree/build CARGO_TARGET_DIR=$repo/target/debian \
        cargo build -p dockgate-module --release --locked
    install_file "$repo/target/debian/release/libngx_http_dockgate_module.so" "$out/ngx_http_dockgate_module.so"
    ;;
vendored)
    # The modules the gateway's configs use, beyond nginx-src's defaults.
    export NGX_CONFIGURE_ARGS="--with-http_auth_request_module --with-http_stub_status_module"
    CARGO_TARGET_DIR=$repo/target/vendored \
        cargo build -p dockgate-module --release --locked --features vendored
    install_file "$repo/target/vendored/release/libngx_http_dockgate_module.so" "$out/ngx_http_dockgate_module.so"
    nginx_bin=$(ls -t "$repo"/target/vendored/release/build/nginx-sys-*/out/objs/nginx | head -n 1)
    install_file "$nginx_bin" "$out/nginx"
    ;;
*)
    echo "build-module: unknown flavor '$flavor' (debian or vendored)" >&2
    exit 2
    ;;
esac
echo "build-module: $out/ngx_http_dockgate_module.so" >&2
