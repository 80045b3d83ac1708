#!/usr/bin/env bash
# Starts dockerd on /var/run/docker.sock unless one answers there. Loopback only: no bridge,
# no iptables. Prints nothing when dockerd was already running; writes its pid to
# $1 (if given) when this script started it.
set -euo pipefail
sock=/var/run/docker.sock
if curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
    exit 0
fi
log=${DOCKGATE_DOCKERD_LOG:-/tmp/dockgate-dockerd.log}
echo "start-dockerd: starting dockerd (log: $log)" >&2
dockerd --bridge=none --iptables=false --ip6tables=false --host "unix://$sock" >"$log" 2>&1 &
pid=$!
[ -n "${1:-}" ] && echo "$pid" >"$1"
for _ in $(seq 1 100); do
    curl -sf --unix-socket "$sock" http://d/_ping >/dev/null 2>&1 && exit 0
    kill -0 "$pid" 2>/dev/null || { tail -20 "$log" >&2; echo "start-dockerd: dockerd exited" >&2; exit 1; }
    sleep 0.2
done
echo "start-dockerd: dockerd did not answer on $sock within 20 s (log: $log)" >&2
exit 1
