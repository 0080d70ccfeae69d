#!/usr/bin/env bash
# Builds the pinned Toxiproxy server (the TCP proxy the network-fault tests put between
# agents, the hub and NATS) through the Go module proxy and caches it outside the
# repository. Only the first run pays (about a minute on 2 cores).
#
#   FLOTILLA_TOXIPROXY_VERSION  github.com/Shopify/toxiproxy/v2 release (default: pinned below)
#   FLOTILLA_CACHE_DIR         cache root (default: ~/.cache/flotilla)
set -euo pipefail

# Keep in step with TOXIPROXY_VERSION in integration-tests/env/src/versions.ts.
TOXIPROXY_VERSION="${FLOTILLA_TOXIPROXY_VERSION:-v2.12.0}"
CACHE_ROOT="${FLOTILLA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla}"
OUT="$CACHE_ROOT/toxiproxy-$TOXIPROXY_VERSION"

if [[ -x "$OUT/toxiproxy" ]]; then
  echo "flotilla: toxiproxy $TOXIPROXY_VERSION already built in $OUT"
  exit 0
fi

command -v go >/dev/null || { echo "flotilla: the Go toolchain is required to build toxiproxy (install Go 1.25+)" >&2; exit 1; }

mkdir -p "$CACHE_ROOT"
WORK="$(mktemp -d "$CACHE_ROOT/build-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

started=$SECONDS
echo "flotilla: building toxiproxy $TOXIPROXY_VERSION into $OUT (first run only; about a minute on 2 cores)"
# `go install pkg@version` builds with the module's own go.mod (its pinned dependencies).
CGO_ENABLED=0 GOBIN="$WORK/bin" go install -trimpath -ldflags="-s -w" \
  "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" 2>"$WORK/toxiproxy.log" || {
  cat "$WORK/toxiproxy.log" >&2
  echo "flotilla: could not build toxiproxy $TOXIPROXY_VERSION from the Go module proxy (set FLOTILLA_TOXIPROXY_VERSION to a published v2.x tag)" >&2
  exit 1
}
mkdir -p "$OUT"
mv "$WORK/bin/server" "$OUT/toxiproxy"
echo "flotilla: done in $((SECONDS - started)) s: $OUT/toxiproxy"
