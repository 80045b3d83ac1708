#!/bin/sh
# The gateway container's start: the sidecar, then nginx in the foreground; when either
# ends, the other is stopped and the container exits. Settings:
#   DOCKGATE_LISTEN   address:port of the plain listener (default 0.0.0.0:2375; "off": none)
#   DOCKGATE_TLS      address:port of the TLS listener (default 0.0.0.0:2376), used when
#                     /etc/dockgate/tls holds server-cert.pem, server-key.pem and ca.pem
#   DOCKGATE_WORKERS  nginx worker_processes (default auto)
# The configuration is /etc/dockgate/dockgate.toml (the package's default: anonymous
# developers under the conservative policy); mount your own over it. dockerd's socket is
# expected at /var/run/docker.sock.
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

servers=""
if [ "$listen" != off ]; then
    servers="$servers
    server {
        listen $listen;
        set \$dockgate_listener loopback;
        include /etc/nginx/dockgate/docker-api-common.conf;
        include /etc/nginx/dockgate/docker-api-policy.conf;
    }"
fi
if [ -f "$tls_dir/server-cert.pem" ] && [ -f "$tls_dir/server-key.pem" ] && [ -f "$tls_dir/ca.pem" ]; then
    servers="$servers
    server {
        listen $tls ssl;
        ssl_certificate         $tls_dir/server-cert.pem;
        ssl_certificate_key     $tls_dir/server-key.pem;
        ssl_client_certificate  $tls_dir/ca.pem;
        include /etc/nginx/dockgate/tls.conf;
        set \$dockgate_listener tls;
        include /etc/nginx/dockgate/docker-api-common.conf;
        include /etc/nginx/dockgate/docker-api-policy.conf;
    }"
fi
mkdir -p /run/dockgate
# nginx's workers reach dockerd's socket in the group that owns it on the host.
gid=$(stat -c %g /var/run/docker.sock)
group=$(getent group "$gid" | cut -d: -f1)
if [ -z "$group" ]; then
    groupadd -g "$gid" dockerhost
    group=dockerhost
fi
cat >/etc/nginx/nginx.conf <<CONF
load_module modules/ngx_http_dockgate_module.so;
user www-data $group;
worker_processes $workers;
pid /run/nginx.pid;
error_log stderr notice;
daemon off;
events { worker_connections 4096; }
http {
    include /etc/nginx/dockgate/dockgate-http.conf;
    include /etc/nginx/dockgate/dockerd-upstream.conf;
    include /etc/nginx/dockgate/dockgate-sidecar.conf;
    dockgate_policy $config;
    access_log /dev/stdout dockgate;
    client_body_temp_path /tmp/nginx-body;
    proxy_temp_path /tmp/nginx-proxy;
    fastcgi_temp_path /tmp/nginx-fastcgi;
    uwsgi_temp_path /tmp/nginx-uwsgi;
    scgi_temp_path /tmp/nginx-scgi;
    # The sidecar's unix socket relays here, with each caller's credentials.
    server {
        listen unix:/run/dockgate/private/docker-api.sock proxy_protocol;
        set \$dockgate_listener unix;
        include /etc/nginx/dockgate/docker-api-common.conf;
        include /etc/nginx/dockgate/docker-api-policy.conf;
    }$servers
}
CONF
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
