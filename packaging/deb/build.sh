#!/usr/bin/env bash
# `make deb`: the two Debian packages, with dpkg-deb, into OUTDIR (default target/deb):
#   libnginx-mod-http-dockgate  the module for Debian's nginx (the .so, its load_module
#                               snippet in modules-available, enabled on install; Depends on
#                               the nginx ABI it was built against)
#   dockgate                    the sidecar: /usr/bin/dockgate, its systemd unit (own user,
#                               hardened), the default configuration as a conffile, the nginx
#                               includes under /etc/nginx/dockgate, a site for the API
# Needs the module (make module) and the sidecar (make sidecar) built. Then lintian.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
out=${1:-$repo/target/deb}
module=$repo/build/debian/ngx_http_dockgate_module.so
sidecar=$repo/target/release/dockgate
for f in "$module" "$sidecar"; do
    [ -e "$f" ] || { echo "deb: $f missing: run make module sidecar" >&2; exit 1; }
done
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)-1
arch=$(dpkg --print-architecture)
# The ABI the module was built for, as Debian's nginx provides it (nginx-abi-1.22.1-7).
abi=$(dpkg-query -W -f='${Provides}' nginx | tr ',' '\n' | sed -n 's/^ *\(nginx-abi-[^ ]*\).*/\1/p')
[ -n "$abi" ] || { echo "deb: the installed nginx provides no nginx-abi" >&2; exit 1; }
maintainer="dockgate developers <dockgate@example.org>"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out"

# The files every package carries: copyright, changelog, md5sums.
docs() { # ROOT PACKAGE
    local root=$1 pkg=$2 doc=$1/usr/share/doc/$2
    mkdir -p "$doc"
    cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: dockgate
Source: https://localhost/dockgate

Files: *
Copyright: 2026 dockgate developers
License: Apache-2.0
 On Debian systems, the full text of the Apache License 2.0 is in
 /usr/share/common-licenses/Apache-2.0.
EOF
    printf '%s (%s) unstable; urgency=medium\n\n  * Package built by make deb.\n\n -- %s  %s\n' \
        "$pkg" "$version" "$maintainer" "$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}")" |
        gzip -9n >"$doc/changelog.Debian.gz"
}
finish() { # ROOT: control files' md5sums, modes
    local root=$1
    (cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's#^\./##' | sort |
        xargs -r md5sum >DEBIAN/md5sums)
    find "$root" -type d -exec chmod 0755 {} +
    chmod 0644 "$root/DEBIAN/md5sums" "$root/DEBIAN/control"
}
size() { du -sk --exclude=DEBIAN "$1" | cut -f1; }
# DEBIAN/control: the fields every package has, then the package's own (stdin).
control() { # ROOT PACKAGE
    install -d "$1/DEBIAN"
    {
        printf 'Package: %s\nVersion: %s\nArchitecture: %s\nMaintainer: %s\nInstalled-Size: %s\n' \
            "$2" "$version" "$arch" "$maintainer" "$(size "$1")"
        cat
    } >"$1/DEBIAN/control"
}

# --- libnginx-mod-http-dockgate -------------------------------------------------------------
pkg=libnginx-mod-http-dockgate
root=$work/$pkg
install -D -m 0644 "$module" "$root/usr/lib/nginx/modules/ngx_http_dockgate_module.so"
strip --strip-unneeded "$root/usr/lib/nginx/modules/ngx_http_dockgate_module.so"
install -d "$root/usr/share/nginx/modules-available"
echo "load_module modules/ngx_http_dockgate_module.so;" \
    >"$root/usr/share/nginx/modules-available/mod-http-dockgate.conf"
chmod 0644 "$root/usr/share/nginx/modules-available/mod-http-dockgate.conf"
docs "$root" "$pkg"
control "$root" "$pkg" <<EOF
Depends: $abi, libc6 (>= 2.34), libgcc-s1 (>= 4.2)
Section: httpd
Priority: optional
Description: Docker API gateway module for nginx (dockgate)
 ngx_http_dockgate_module relays Docker's hijacked streams (attach, exec, build
 sessions) in full duplex with half-closes, and decides Docker API requests in
 nginx's workers (dockgate_policy, dockgate_decide), with the dockgate sidecar
 for what needs the engine.
EOF
cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    mkdir -p /etc/nginx/modules-enabled
    ln -sf /usr/share/nginx/modules-available/mod-http-dockgate.conf \
        /etc/nginx/modules-enabled/50-mod-http-dockgate.conf
fi
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "remove" ] || [ "$1" = "purge" ]; then
    rm -f /etc/nginx/modules-enabled/50-mod-http-dockgate.conf
fi
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
finish "$root"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${pkg}_${version}_${arch}.deb" >/dev/null

# --- dockgate (the sidecar) -------------------------------------------------------------------
pkg=dockgate
root=$work/$pkg
install -D -m 0755 "$sidecar" "$root/usr/bin/dockgate"
strip --strip-unneeded "$root/usr/bin/dockgate"
install -D -m 0644 packaging/deb/dockgate.service "$root/lib/systemd/system/dockgate.service"
install -D -m 0644 packaging/deb/dockgate.1 "$root/usr/share/man/man1/dockgate.1"
gzip -9n "$root/usr/share/man/man1/dockgate.1"
install -D -m 0644 sidecar/decision/src/default.toml "$root/etc/dockgate/dockgate.toml"
for f in dockgate-http.conf docker-api-common.conf docker-api.conf docker-api-policy.conf tls.conf registry-http.conf registry-frontend.conf \
    package-cache-http.conf package-cache.conf; do
    install -D -m 0644 "nginx-conf/$f" "$root/etc/nginx/dockgate/$f"
done
# The site, from the one renderer: the sidecar's relay (the built-in configuration's
# [listeners.unix]) and TLS on 2376.
install -d "$root/etc/nginx/sites-available"
{
    cat <<'SITE'
# dockgate's Docker API gateway, as a site of Debian's nginx (http context). Enable it once
# the TLS files are in /etc/nginx/dockgate/tls (server-cert.pem, server-key.pem, ca.pem: the
# CA your clients' certificates are signed by):
#   ln -s /etc/nginx/sites-available/dockgate /etc/nginx/sites-enabled/dockgate
# nginx's workers must be in the docker group (the package adds www-data to it).
#   unix:///run/dockgate/docker.sock   the sidecar's socket (callers known by their uid)
#   tcp://HOST:2376                    TLS with client certificates
# Re-render after changing listeners: dockgate nginx-conf --help
SITE
    "$sidecar" nginx-conf --config sidecar/decision/src/default.toml \
        --policy-path /etc/dockgate/dockgate.toml --site --tls tls=2376 \
        --access-log "/var/log/nginx/docker-api.log dockgate buffer=64k flush=1s"
} >"$root/etc/nginx/sites-available/dockgate"
docs "$root" "$pkg"
install -m 0644 README.md "$root/usr/share/doc/$pkg/README.md"
install -d "$root/usr/share/doc/$pkg/docs"
install -m 0644 docs/*.md "$root/usr/share/doc/$pkg/docs/"
gzip -9n "$root/usr/share/doc/$pkg/README.md" "$root/usr/share/doc/$pkg/docs/"*.md
control "$root" "$pkg" <<EOF
Depends: libc6 (>= 2.34), libgcc-s1 (>= 4.2), adduser
Recommends: nginx, libnginx-mod-http-dockgate (= $version), docker.io
Section: admin
Priority: optional
Description: Docker API gateway sidecar: identity, policy, tenants, CI job sockets
 dockgate puts stock nginx in front of the Docker Engine API and of container
 registries, so that many users and CI jobs share Docker hosts safely. This
 package has the sidecar nginx consults (dockgate serve) as a systemd service
 with its own user, its configuration in /etc/dockgate, the nginx includes in
 /etc/nginx/dockgate and a site for the API in /etc/nginx/sites-available.
EOF
(cd "$root" && find etc -type f | sed 's#^#/#' | sort) >"$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"
cat >"$root/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    if ! getent passwd dockgate >/dev/null; then
        adduser --system --group --no-create-home --home /nonexistent --quiet dockgate
    fi
    # The sidecar reaches dockerd's socket, and nginx's workers the sidecar's and dockerd's.
    # (www-data's membership is undone at purge only if this package made it.)
    if getent group docker >/dev/null; then
        adduser --quiet dockgate docker
        if getent passwd www-data >/dev/null && ! id -nG www-data | grep -qw docker; then
            adduser --quiet www-data docker
            mkdir -p /var/lib/dockgate
            touch /var/lib/dockgate/www-data-joined-docker
        fi
    fi
    if [ -d /run/systemd/system ]; then
        systemctl --system daemon-reload >/dev/null || true
        deb-systemd-helper enable dockgate.service >/dev/null || true
    fi
fi
EOF
cat >"$root/DEBIAN/prerm" <<'EOF'
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "$1" = "remove" ]; then
    deb-systemd-invoke stop dockgate.service >/dev/null || true
fi
EOF
cat >"$root/DEBIAN/postrm" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "purge" ]; then
    if [ -e /var/lib/dockgate/www-data-joined-docker ]; then
        deluser --quiet www-data docker >/dev/null || true
    fi
    rm -rf /var/lib/dockgate /run/dockgate
    if getent passwd dockgate >/dev/null; then
        deluser --quiet --system dockgate >/dev/null || true
    fi
    if getent group dockgate >/dev/null; then
        delgroup --quiet --system dockgate >/dev/null || true
    fi
    if command -v deb-systemd-helper >/dev/null; then
        deb-systemd-helper purge dockgate.service >/dev/null || true
    fi
fi
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
EOF
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
finish "$root"
dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${pkg}_${version}_${arch}.deb" >/dev/null
ls "$out"/*.deb
