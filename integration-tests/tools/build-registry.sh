#!/usr/bin/env bash
# Builds the pinned CNCF Distribution registry (the OCI registry Helm charts are pushed
# to in the chart tests) through the Go module proxy and caches it outside the
# repository. Only the first run pays (about 3.5 minutes on 2 cores).
#
#   FLOTILLA_REGISTRY_VERSION  github.com/distribution/distribution/v3 release (default: pinned below)
#   FLOTILLA_CACHE_DIR         cache root (default: ~/.cache/flotilla)
set -euo pipefail

# Keep in step with REGISTRY_VERSION in integration-tests/env/src/versions.ts.
REGISTRY_VERSION="${FLOTILLA_REGISTRY_VERSION:-v3.1.2}"
CACHE_ROOT="${FLOTILLA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla}"
OUT="$CACHE_ROOT/registry-$REGISTRY_VERSION"

if [[ -x "$OUT/registry" ]]; then
  echo "flotilla: registry (CNCF Distribution) $REGISTRY_VERSION already built in $OUT"
  exit 0
fi

command -v go >/dev/null || { echo "flotilla: the Go toolchain is required to build the registry (install Go 1.25+)" >&2; exit 1; }

mkdir -p "$CACHE_ROOT"
WORK="$(mktemp -d "$CACHE_ROOT/build-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

started=$SECONDS
echo "flotilla: building registry (CNCF Distribution) $REGISTRY_VERSION into $OUT (first run only; a few minutes on 2 cores)"
# `go install pkg@version` builds with the module's own go.mod (its pinned dependencies).
CGO_ENABLED=0 GOBIN="$WORK/bin" go install -trimpath \
  -ldflags="-s -w -X github.com/distribution/distribution/v3/version.version=$REGISTRY_VERSION" \
  "github.com/distribution/distribution/v3/cmd/registry@$REGISTRY_VERSION" 2>"$WORK/registry.log" || {
  cat "$WORK/registry.log" >&2
  echo "flotilla: could not build the registry $REGISTRY_VERSION from the Go module proxy (set FLOTILLA_REGISTRY_VERSION to a published v3.x tag)" >&2
  exit 1
}
mkdir -p "$OUT"
mv "$WORK/bin/registry" "$OUT/"
echo "flotilla: done in $((SECONDS - started)) s: $OUT/registry"
