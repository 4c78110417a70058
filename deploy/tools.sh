#!/usr/bin/env bash
# Installs the ops tools the deploy tests run, idempotently, outside the repository:
#   prometheus + promtool   Debian's `prometheus` package (apt-get, when promtool is missing)
#   kubeconform             `go install` from the Go module proxy, pinned
#   composecheck            deploy/composecheck: compose-go (Docker Compose's own loader and schema), built with go
# Go binaries and caches live in ~/.cache/expansion-radar/go (RADAR_TOOLS_DIR overrides); the tests find them
# there. Prints the bin directory on stdout; progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBECONFORM_VERSION=v0.7.0
tools=${RADAR_TOOLS_DIR:-$HOME/.cache/expansion-radar/go}
mkdir -p "$tools/bin"
export GOPATH="$tools" GOMODCACHE="$tools/mod" GOCACHE="$tools/build" GOBIN="$tools/bin" GOFLAGS=-mod=mod GOTOOLCHAIN=local

if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  echo "installing Debian's prometheus (promtool)" >&2
  if [[ $(id -u) -eq 0 ]]; then apt_get=(apt-get); else apt_get=(sudo apt-get); fi
  "${apt_get[@]}" install -y -q --no-install-recommends prometheus >&2 \
    || { "${apt_get[@]}" update -q >&2 && "${apt_get[@]}" install -y -q --no-install-recommends prometheus >&2; }
fi

if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then PATH=/usr/local/go/bin:$PATH; fi
command -v go >/dev/null || { echo "go is needed to build kubeconform and composecheck" >&2; exit 1; }

if ! go version -m "$tools/bin/kubeconform" 2>/dev/null | grep -q "mod.*kubeconform.*$KUBECONFORM_VERSION"; then
  echo "installing kubeconform $KUBECONFORM_VERSION" >&2
  go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" >&2
fi

stamp=$(cat deploy/composecheck/go.mod deploy/composecheck/go.sum deploy/composecheck/main.go | sha256sum | cut -c1-16)
if [[ ! -x "$tools/bin/composecheck" || ! -f "$tools/bin/composecheck.$stamp" ]]; then
  echo "building composecheck" >&2
  (cd deploy/composecheck && go build -o "$tools/bin/composecheck" .) >&2
  rm -f "$tools/bin"/composecheck.* && touch "$tools/bin/composecheck.$stamp"
fi

echo "$tools/bin"
