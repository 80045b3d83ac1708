#!/bin/sh
# The gateway container's start: the sidecar, then nginx in the foreground; when either
# ends, the other is stopped and the container exits. Settings:
#   DOCKGATE_LISTEN   address:port of the plain listener (default 0.0.0.0:2375; "off": none)
#   DOCKGATE_TLS      address:port of the TLS listener (default 0.0.0.0:2376), used when
#                     /etc/dockgate/tls holds server-cert.pem, server-key.pem and ca.pem
#   DOCKGATE_WORKERS  nginx worker_processes (default auto)
#   DOCKGATE_REGISTRY address:port of the registry front-end (default: none), in front of
#                     DOCKGATE_REGISTRY_HOSTED and DOCKGATE_REGISTRY_UPSTREAM (host:port);
#                     the configuration's [registry] table says who may pull and push
#   DOCKGATE_PACKAGE_CACHE  "on": serve the configuration's [package_cache] on its address
#   DOCKGATE_ORIGIN_CAS     the CAs the package cache checks its origins with (default: the
#                     system's)
# The configuration is /etc/dockgate/dockgate.toml (the package's default: anonymous
# developers under the conservative policy); mount your own over it. dockerd's socket is
# expected at /var/run/docker.sock. nginx.conf is rendered by `dockgate nginx-conf`.
set -eu
listen=${DOCKGATE_LISTEN:-0.0.0.0:2375}
tls=${DOCKGATE_TLS:-0.0.0.0:2376}
workers=${DOCKGATE_WORKERS:-auto}
config=/etc/dockgate/dockgate.toml
tls_dir=/etc/dockgate/tls

[ -S /var/run/docker.sock ] || {
    echo "dockgate: no Docker socket at /var/run/docker.sock (run with -v /var/run/docker.sock:/var/run/docker.sock)" >&2
    exit 2
}
/usr/bin/dockgate check-config "$config" >/dev/null

set -- --config "$config" --includes /etc/nginx/dockgate \
    --module /usr/lib/nginx/modules/ngx_http_dockgate_module.so \
    --workers "$workers" --error-log "stderr notice" --access-log "/dev/stdout dockgate" \
    --prefix /run/nginx --tls-dir "$tls_dir"
[ "$listen" = off ] || set -- "$@" --listen "loopback=$listen"
if [ -f "$tls_dir/server-cert.pem" ] && [ -f "$tls_dir/server-key.pem" ] && [ -f "$tls_dir/ca.pem" ]; then
    set -- "$@" --tls "tls=$tls"
fi
if [ -n "${DOCKGATE_REGISTRY:-}" ]; then
    set -- "$@" --registry "$DOCKGATE_REGISTRY" \
        --registry-hosted "${DOCKGATE_REGISTRY_HOSTED:?DOCKGATE_REGISTRY needs DOCKGATE_REGISTRY_HOSTED}" \
        --registry-upstream "${DOCKGATE_REGISTRY_UPSTREAM:?DOCKGATE_REGISTRY needs DOCKGATE_REGISTRY_UPSTREAM}" \
        --registry-cache /var/cache/dockgate/registry
fi
if [ "${DOCKGATE_PACKAGE_CACHE:-off}" = on ]; then
    set -- "$@" --package-cache /var/cache/dockgate/packages \
        --origin-cas "${DOCKGATE_ORIGIN_CAS:-/etc/ssl/certs/ca-certificates.crt}"
fi
mkdir -p /run/dockgate
# nginx's workers reach dockerd's socket in the group that owns it on the host.
gid=$(stat -c %g /var/run/docker.sock)
group=$(getent group "$gid" | cut -d: -f1)
if [ -z "$group" ]; then
    groupadd -g "$gid" dockerhost
    group=dockerhost
fi
mkdir -p /run/nginx /var/cache/dockgate
/usr/bin/dockgate nginx-conf "$@" --user "www-data $group" >/etc/nginx/nginx.conf
# The modules-enabled snippet would load the module a second time.
rm -f /etc/nginx/modules-enabled/50-mod-http-dockgate.conf

/usr/bin/dockgate serve --config "$config" &
sidecar=$!
i=0
while [ ! -S /run/dockgate/sidecar.sock ]; do
    i=$((i + 1))
    [ $i -le 100 ] || { echo "dockgate: the sidecar did not start" >&2; exit 1; }
    kill -0 $sidecar 2>/dev/null || exit 1
    sleep 0.1
done
nginx &
nginx=$!
trap 'kill -TERM $nginx $sidecar 2>/dev/null' TERM INT
# Whichever ends first ends the container.
while kill -0 $nginx 2>/dev/null && kill -0 $sidecar 2>/dev/null; do
    sleep 1
done
kill -TERM $nginx $sidecar 2>/dev/null || true
wait $nginx 2>/dev/null || true
wait $sidecar 2>/dev/null || true
