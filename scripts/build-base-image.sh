#!/bin/sh
# Build a Debian bookworm base image (python3.11, pip, venv, headers, g++, make) with debootstrap and `docker import` it,
# for hosts that cannot pull python:3.11-slim-bookworm from Docker Hub. Then:
#   docker build --build-arg BASE_IMAGE=sorgw-base:bookworm -t sor-gateway .
# Usage: scripts/build-base-image.sh [TAG]   (TAG defaults to sorgw-base:bookworm)
# Environment: MIRROR (default: the first Debian mirror in /etc/apt/sources.list*, else http://deb.debian.org/debian);
#              EXTRA_CA_CERTS (PEM files trusted inside the image, e.g. a proxy's CA; default none). pip in a
#              virtualenv trusts its own bundle, not the system's: the image sets PIP_CERT to the system's.
# Needs root, debootstrap and a running Docker daemon; takes a few minutes.
set -eu

TAG=${1:-sorgw-base:bookworm}
PACKAGES=python3,python3-pip,python3-venv,python3-dev,g++,make,ca-certificates  # -dev, g++, make: quickfix's build

mirror() {
    grep -rhoE '(URIs:|^deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null \
        | awk '{print $2; exit}'
}
MIRROR=${MIRROR:-$(mirror)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

for tool in debootstrap docker; do
    command -v "$tool" >/dev/null || { echo "build-base-image: $tool not found (apt-get install debootstrap docker.io)" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "build-base-image: debootstrap needs root" >&2; exit 2; }
docker info >/dev/null 2>&1 || { echo "build-base-image: no Docker daemon answers (start dockerd)" >&2; exit 2; }

ROOT=$(mktemp -d /tmp/sorgw-base.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
echo "build-base-image: debootstrap bookworm from $MIRROR into $ROOT" >&2
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOT" "$MIRROR" >&2
for cert in ${EXTRA_CA_CERTS:-}; do
    cp "$cert" "$ROOT/usr/local/share/ca-certificates/$(basename "$cert" .crt).crt"
done
[ -z "${EXTRA_CA_CERTS:-}" ] || chroot "$ROOT" update-ca-certificates >&2
chroot "$ROOT" apt-get clean
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.bin "$ROOT"/tmp/*
tar -C "$ROOT" -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["/bin/bash"]' \
    - "$TAG" >/dev/null
echo "$TAG"
