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
    user_line="nobody $(stat -c %G /var/run/docker.sock)"
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

# The one renderer (sidecar/nginxconf) writes nginx.conf around nginx-conf/'s includes; the
# sidecar's file says where it listens and which unix socket it relays.
"$sidecar_bin" nginx-conf --config "$run/sidecar.toml" --includes "$repo/nginx-conf" \
    --module "$module" ${user_line:+--user "$user_line"} --prefix "$run" \
    --access-log "$run/logs/dockgate-access.log dockgate buffer=64k flush=1s" \
    --listen loopback=127.0.0.1:2375 --tls tls=127.0.0.1:2376 --tls-dir "$run/tls" \
    >"$run/nginx.conf"
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
