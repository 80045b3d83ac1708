# A registry for the compose stack: CNCF distribution (Debian's docker-registry), used as the
# hosted registry and, with REGISTRY_PROXY_REMOTEURL, as the pull-through upstream.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends docker-registry \
    && rm -rf /var/lib/apt/lists/*
COPY docker/registry.yml /etc/docker/registry/config.yml
COPY docker/registry-entrypoint.sh /usr/local/bin/registry-entrypoint
VOLUME /var/lib/docker-registry
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/registry-entrypoint"]
