#!/bin/sh
# The stack's registry: distribution on the unix socket REGISTRY_HTTP_ADDR (in a volume only
# the gateway shares), opened to the gateway's nginx workers once it exists.
set -eu
sock=${REGISTRY_HTTP_ADDR:?REGISTRY_HTTP_ADDR: the unix socket to listen on}
rm -f "$sock"
/usr/bin/docker-registry serve /etc/docker/registry/config.yml &
pid=$!
trap 'kill -TERM $pid 2>/dev/null' TERM INT
i=0
while [ ! -S "$sock" ]; do
    i=$((i + 1))
    [ $i -le 100 ] && kill -0 $pid 2>/dev/null || { echo "registry: no socket at $sock" >&2; exit 1; }
    sleep 0.1
done
chmod 0666 "$sock"
wait $pid || true
wait $pid 2>/dev/null || true
