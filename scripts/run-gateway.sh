#!/usr/bin/env bash
# `make run`: the gateway in the foreground, in front of the local dockerd: nginx with the
# module, and the sidecar deciding every request with its built-in configuration
# (anonymous "developer" on loopback and the unix socket, conservative policy).
#   tcp://127.0.0.1:2375          plain, loopback only
#   unix://$PWD/run/docker.sock   unix socket
#   tcp://127.0.0.1:2376          TLS with client certificates (certs in run/tls/client)
# Ctrl-C or SIGTERM stops nginx (fast shutdown: open streams are cut), the sidecar, and
# dockerd if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
run=$repo/run
nginx_bin=${DOCKGATE_NGINX:-/usr/sbin/nginx}
module=${DOCKGATE_MODULE:-$repo/build/debian/ngx_http_dockgate_module.so}
sidecar_bin=${DOCKGATE_SIDECAR:-$repo/target/release/dockgate}
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

# The built-in sidecar configuration, with this run's socket; the certificate made above is
# the user "local-tls" (developer) on the TLS listener.
fingerprint=$(openssl x509 -noout -fingerprint -sha1 -in "$run/tls/client/cert.pem" | sed 's/.*=//; s/://g')
sed -e "s#unix:/run/dockgate/sidecar.sock#unix:$run/sidecar.sock#" \
    -e "s#\"/run/dockgate/docker.sock\"#\"$run/docker.sock\"#" \
    -e "s#unix:/run/dockgate/private/#unix:$run/private/#" \
    sidecar/decision/src/default.toml >"$run/sidecar.toml"
cat >>"$run/sidecar.toml" <<TOML

[[users]]
name = "local-tls"
role = "developer"
cert_fingerprints = ["$fingerprint"]
TOML
"$sidecar_bin" check-config "$run/sidecar.toml" >/dev/null

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
    upstream dockgate_sidecar { server unix:$run/sidecar.sock; keepalive 16; }
    dockgate_policy $run/sidecar.toml;
    # Buffered: one write per 64k of log lines, at most a second late.
    access_log $run/logs/dockgate-access.log dockgate buffer=64k flush=1s;
    server {
        listen 127.0.0.1:2375;
        set \$dockgate_listener loopback;
        include $repo/nginx-conf/docker-api-common.conf;
        include $repo/nginx-conf/docker-api-policy.conf;
    }
    # The sidecar owns $run/docker.sock and relays here with the caller's uid.
    server {
        listen unix:$run/private/docker-api.sock proxy_protocol;
        set \$dockgate_listener unix;
        include $repo/nginx-conf/docker-api-common.conf;
        include $repo/nginx-conf/docker-api-policy.conf;
    }
    server {
        listen 127.0.0.1:2376 ssl;
        ssl_certificate $run/tls/server-cert.pem;
        ssl_certificate_key $run/tls/server-key.pem;
        ssl_client_certificate $run/tls/ca.pem;
        include $repo/nginx-conf/tls.conf;
        set \$dockgate_listener tls;
        include $repo/nginx-conf/docker-api-common.conf;
        include $repo/nginx-conf/docker-api-policy.conf;
    }
}
CONF
mkdir -p -m 0700 "$run/private"
"$nginx_bin" -p "$run" -c "$run/nginx.conf" -t -q

stop() {
    trap - INT TERM EXIT
    [ -n "${nginx_pid:-}" ] && kill -TERM "$nginx_pid" 2>/dev/null && wait "$nginx_pid" 2>/dev/null
    [ -n "${sidecar_pid:-}" ] && kill -TERM "$sidecar_pid" 2>/dev/null && wait "$sidecar_pid" 2>/dev/null
    if [ -f "$dockerd_pid_file" ]; then
        kill "$(cat "$dockerd_pid_file")" 2>/dev/null || true
        rm -f "$dockerd_pid_file"
    fi
    rm -f "$run/docker.sock"
}
trap stop INT TERM EXIT

"$sidecar_bin" serve --config "$run/sidecar.toml" &
sidecar_pid=$!
for _ in $(seq 1 50); do [ -S "$run/sidecar.sock" ] && break; sleep 0.1; done
"$nginx_bin" -p "$run" -c "$run/nginx.conf" &
nginx_pid=$!
cat >&2 <<MSG
dockgate: serving the Docker API of /var/run/docker.sock on
  DOCKER_HOST=tcp://127.0.0.1:2375
  DOCKER_HOST=unix://$run/docker.sock
  DOCKER_HOST=tcp://127.0.0.1:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=$run/tls/client
  metrics: curl http://127.0.0.1:2375/_dockgate/metrics   access log: $run/logs/dockgate-access.log
  policy: the sidecar's built-in configuration (sidecar/decision/src/default.toml); try
          docker run --rm --privileged busybox true
Ctrl-C stops it.
MSG
wait "$nginx_pid"
