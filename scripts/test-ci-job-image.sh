#!/usr/bin/env bash
# Builds the offline CI job image `dgtest/ci-job:host`: the Debian image of
# test-debian-image.sh with docker-compose (Debian's 1.29) and both docker CLIs at the
# host's paths (28.x at /usr/local/bin/docker, Debian's 20.10 at /usr/bin/docker), so a job
# can drive its socket the way a CI job image does. Keeps an existing image.
set -euo pipefail
cd "$(dirname "$0")/.."
export DOCKGATE_IMAGE_COPY="/usr/local/bin/docker=/usr/local/bin/docker /usr/bin/docker=/usr/bin/docker"
exec scripts/test-debian-image.sh "${1:-dgtest/ci-job:host}" docker-compose
