#!/usr/bin/env bash
# Builds the pinned nats-server for the test environment through the Go module proxy
# and caches it outside the repository. Only the first run pays (about a minute).
#
#   FLOTILLA_NATS_VERSION  nats-server release (default: the pinned one below)
#   FLOTILLA_CACHE_DIR     cache root (default: ~/.cache/flotilla)
set -euo pipefail

# Keep in step with NATS_SERVER_VERSION in integration-tests/env/src/versions.ts.
NATS_VERSION="${FLOTILLA_NATS_VERSION:-v2.12.2}"
CACHE_ROOT="${FLOTILLA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla}"
OUT="$CACHE_ROOT/nats-server-$NATS_VERSION"

if [[ -x "$OUT/nats-server" ]]; then
  echo "flotilla: nats-server $NATS_VERSION already built in $OUT"
  exit 0
fi

command -v go >/dev/null || { echo "flotilla: the Go toolchain is required to build nats-server (install Go 1.24+)" >&2; exit 1; }

mkdir -p "$CACHE_ROOT"
WORK="$(mktemp -d "$CACHE_ROOT/build-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

echo "flotilla: building nats-server $NATS_VERSION into $OUT (first run only)"
# A wrapper module pins the version; `go install pkg@version` would also work but
# ignores GOFLAGS/replace and writes into GOBIN rather than our cache.
cat > go.mod <<GOMOD
module flotilla.dev/nats-test-binary

go 1.24

require github.com/nats-io/nats-server/v2 $NATS_VERSION
GOMOD
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "github.com/nats-io/nats-server/v2"
GO

echo "flotilla: [1/2] resolving github.com/nats-io/nats-server/v2@$NATS_VERSION"
GOFLAGS=-mod=mod go mod tidy >/dev/null 2>"$WORK/tidy.log" || {
  cat "$WORK/tidy.log" >&2
  echo "flotilla: could not resolve nats-server $NATS_VERSION from the Go module proxy (set FLOTILLA_NATS_VERSION to a published v2.x tag)" >&2
  exit 1
}

echo "flotilla: [2/2] compiling nats-server"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$WORK/nats-server" github.com/nats-io/nats-server/v2
[[ -x "$WORK/nats-server" ]] || { echo "flotilla: nats-server build failed" >&2; exit 1; }
mkdir -p "$OUT"
mv "$WORK/nats-server" "$OUT/"
echo "flotilla: done in ${SECONDS} s: $OUT/nats-server"
