# dockgate: `make run` serves the gateway, `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help deps dockerd images module module-vendored modules sidecar run test test-unit test-e2e test-docker-py bench lint deb

help:
	@echo "make run    start the gateway on tcp://127.0.0.1:2375 (and a unix socket, TLS on :2376)"
	@echo "make test   build everything and run all tests"
	@echo "make bench  gateway vs direct socket figures (bench/RESULTS.md)"

deps:
	@scripts/install-deps.sh

dockerd: deps
	@scripts/start-dockerd.sh

images: dockerd
	@scripts/test-images.sh
	@scripts/test-debian-image.sh

module: deps
	@scripts/build-module.sh debian

module-vendored: deps
	@scripts/build-module.sh vendored

modules: module module-vendored

run: module sidecar
	@scripts/run-gateway.sh

lint: module
	cargo fmt --all -- --check
	NGINX_SOURCE_DIR=$(CURDIR)/build/nginx-debian/src NGINX_BUILD_DIR=$(CURDIR)/build/nginx-debian/build \
		CARGO_TARGET_DIR=$(CURDIR)/target/debian cargo clippy --locked -p dockgate-module --all-targets -- -D warnings
	cargo clippy --locked -p dockgate-api -p dockgate-decision -p dockgate-nginxconf -p dockgate-policy -p dockgate-tenant -p dockgate-registry -p dockgate-ca -p dockgate-sidecar -p dockgate-tests --all-targets -- -D warnings

# Unit and property tests of the pure crates (no nginx or dockerd needed).
test-unit: module
	NGINX_SOURCE_DIR=$(CURDIR)/build/nginx-debian/src NGINX_BUILD_DIR=$(CURDIR)/build/nginx-debian/build \
		CARGO_TARGET_DIR=$(CURDIR)/target/debian cargo test --locked -p dockgate-module --release --lib
	cargo test --locked -p dockgate-api -p dockgate-decision -p dockgate-nginxconf -p dockgate-policy -p dockgate-tenant -p dockgate-registry -p dockgate-ca -p dockgate-sidecar --release

# End-to-end suites: real docker CLIs, dockerd and both nginx builds.
test-e2e: modules images sidecar
	cargo test --locked -p dockgate-tests --release -- --test-threads=$${DOCKGATE_TEST_THREADS:-4}

# docker-py 7.2.0's integration suite on the socket and through the gateway; needs a
# docker-py 7.2.0 source tree in DOCKER_PY_SRC (tests/docker-py/README.md). Not in `test`:
# the suite is not on this machine's package registries.
test-docker-py: module sidecar images
	DOCKER_PY_SRC="$(DOCKER_PY_SRC)" tests/docker-py/run.sh

# The Debian packages (module for Debian's nginx, sidecar with its unit) in target/deb.
deb: module sidecar
	packaging/deb/build.sh target/deb
	lintian --tag-display-limit 0 target/deb/*.deb

# The sidecar binary, target/release/dockgate.
sidecar:
	cargo build --locked --release -p dockgate-sidecar

test: lint test-unit test-e2e

bench: modules images sidecar
	bench/run.sh
	bench/sidecar.sh
	bench/registry.sh
	bench/package-cache.sh
