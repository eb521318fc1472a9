#!/usr/bin/env bash
# Builds the learnstream image here without any container registry (make image):
#   1. a Debian bookworm base from Debian's packages (mmdebstrap), imported into podman
#      as localhost/learnstream-base (once; var/image/rootfs.tar is kept);
#   2. the Containerfile FROM that base, pip reaching PyPI through the host's network and
#      CA bundle.
# Needs: apt-get install podman runc mmdebstrap. Tag: localhost/learnstream:latest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

ROOTFS=var/image/rootfs.tar
BASE=localhost/learnstream-base:bookworm
for tool in podman mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "build-image.sh: $tool missing (apt-get install podman runc mmdebstrap)" >&2; exit 1; }
done
if ! podman image exists "$BASE"; then
  if [[ ! -s $ROOTFS ]]; then
    mkdir -p "$(dirname "$ROOTFS")"
    mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$ROOTFS.tmp"
    mv "$ROOTFS.tmp" "$ROOTFS"
  fi
  podman import "$ROOTFS" "$BASE"
fi
# crun (podman's default here) fails on rlimits and cgroups in this machine's sandbox: runc.
# --format docker: the OCI format has no HEALTHCHECK (podman drops it with a warning).
# The CA bundle is mounted, not copied: the image does not carry the build host's trust store.
podman --runtime runc build --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  --volume /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro \
  --format docker \
  --build-arg BASE="$BASE" -f deploy/container/Containerfile -t localhost/learnstream:latest .
