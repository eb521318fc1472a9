#!/usr/bin/env bash
# Prints the path of a pinned helm binary, building it first if it is missing.
#
#   bash deploy/tools/helm.sh            # -> var/tools/helm-v3.22.0/helm
#
# No release tarball is downloaded: `go install` builds helm from the Go module proxy
# (go.sum-verified sources), which is what this machine and CI can reach. A cold build
# takes about 3 minutes on 2 cores, so the binary is kept under var/ (git-ignored) and
# reused; a fresh clone builds it once. Needs Go (>= 1.24, helm's go.mod).
set -euo pipefail

HELM_VERSION=v3.22.0
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
REPO_ROOT="$(pwd)"
DEST="${LEARNSTREAM_VAR_DIR:-$REPO_ROOT/var}/tools/helm-$HELM_VERSION"
HELM="$DEST/helm"

# The version is in the path (a go-installed helm reports only "v3.22" itself;
# `go version -m` on the binary shows the module version it was built from).
if [[ -x $HELM ]]; then
  echo "$HELM"
  exit 0
fi

command -v go >/dev/null || { echo "helm.sh: Go is needed to build helm $HELM_VERSION (apt-get install golang or go.dev/dl)" >&2; exit 1; }
mkdir -p "$DEST"
# One build at a time: two test runs (CI runs the suite twice) must not race on GOBIN.
exec 9>"$DEST.lock"
flock 9
if [[ ! -x $HELM ]]; then
  echo "helm.sh: building helm $HELM_VERSION with $(go version | cut -d' ' -f3) (about 3 minutes cold)..." >&2
  t0=$SECONDS
  # -trimpath: the binary does not embed this machine's paths. Low priority: the machine
  # is shared. CGO off: a static binary, no C toolchain needed.
  CGO_ENABLED=0 GOBIN="$DEST.tmp" GOFLAGS=-modcacherw \
    nice -n 10 go install -trimpath "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  mv "$DEST.tmp/helm" "$HELM"
  rmdir "$DEST.tmp"
  echo "helm.sh: built in $((SECONDS - t0)) s" >&2
fi
echo "$HELM"
