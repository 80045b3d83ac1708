#!/usr/bin/env bash
# `make run`: the gateway in the foreground, in front of the local dockerd.
#   tcp://127.0.0.1:2375          plain, loopback only
#   unix://$PWD/run/docker.sock   unix socket
#   tcp://127.0.0.1:2376          TLS with client certificates (certs in run/tls/client)
# Ctrl-C or SIGTERM stops nginx (fast shutdown: open streams are cut), and dockerd if this
# script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
run=$repo/run
nginx_bin=${DOCKGATE_NGINX:-/usr/sbin/nginx}
module=${DOCKGATE_MODULE:-$repo/build/debian/ngx_http_dockgate_module.so}
mkdir -p "$run/logs" "$run/tmp"

dockerd_pid_file=$run/dockerd.pid
rm -f "$dockerd_pid_file"
scripts/start-dockerd.sh "$dockerd_pid_file"
scripts/gen-certs.sh "$run/tls"

# Workers run unprivileged, in the group that owns the Docker socket.
user_line=""
if [ "$(id -u)" = 0 ]; then
    user_line="user nobody $(stat -c %G /var/run/docker.sock);"
fi

cat >"$run/nginx.conf" <<CONF
# Written by scripts/run-gateway.sh; the includes are the ones in nginx-conf/.
load_module $module;
$user_line
daemon off;
worker_processes auto;
pid $run/nginx.pid;
error_log stderr notice;
events { worker_connections 4096; }
http {
    client_body_temp_path $run/tmp/body;
    proxy_temp_path $run/tmp/proxy;
    include $repo/nginx-conf/dockgate-http.conf;
    include $repo/nginx-conf/dockerd-upstream.conf;
    access_log $run/logs/dockgate-access.log dockgate;
    server {
        listen 127.0.0.1:2375;
        listen unix:$run/docker.sock;
        include $repo/nginx-conf/docker-api.conf;
    }
    server {
        listen 127.0.0.1:2376 ssl;
        ssl_certificate $run/tls/server-cert.pem;
        ssl_certificate_key $run/tls/server-key.pem;
        ssl_client_certificate $run/tls/ca.pem;
        include $repo/nginx-conf/tls.conf;
        include $repo/nginx-conf/docker-api.conf;
    }
}
CONF
rm -f "$run/docker.sock"
"$nginx_bin" -p "$run" -c "$run/nginx.conf" -t -q

stop() {
    trap - INT TERM EXIT
    [ -n "${nginx_pid:-}" ] && kill -TERM "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    if [ -f "$dockerd_pid_file" ]; then
        kill "$(cat "$dockerd_pid_file")" 2>/dev/null || true
        rm -f "$dockerd_pid_file"
    fi
    rm -f "$run/docker.sock"
}
trap stop INT TERM EXIT

"$nginx_bin" -p "$run" -c "$run/nginx.conf" &
nginx_pid=$!
cat >&2 <<MSG
dockgate: serving the Docker API of /var/run/docker.sock on
  DOCKER_HOST=tcp://127.0.0.1:2375
  DOCKER_HOST=unix://$run/docker.sock
  DOCKER_HOST=tcp://127.0.0.1:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$run/tls/client
  metrics: curl http://127.0.0.1:2375/_dockgate/metrics   access log: $run/logs/dockgate-access.log
Ctrl-C stops it.
MSG
wait "$nginx_pid"
