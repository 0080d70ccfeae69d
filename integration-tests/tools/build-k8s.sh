#!/usr/bin/env bash
# Builds the pinned kube-apiserver and etcd for the test environment through the Go
# module proxy and caches them outside the repository. Only the first run pays.
#
#   FLOTILLA_K8S_VERSION   Kubernetes release (default: the pinned one below)
#   FLOTILLA_CACHE_DIR     cache root (default: ~/.cache/flotilla)
set -euo pipefail

K8S_VERSION="${FLOTILLA_K8S_VERSION:-v1.35.4}"
CACHE_ROOT="${FLOTILLA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla}"
OUT="$CACHE_ROOT/k8s-$K8S_VERSION"
STAGING_VERSION="v0.${K8S_VERSION#v1.}"

if [[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" ]]; then
  echo "flotilla: kube-apiserver and etcd $K8S_VERSION already built in $OUT"
  exit 0
fi

command -v go >/dev/null || { echo "flotilla: the Go toolchain is required to build kube-apiserver (install Go 1.25+)" >&2; exit 1; }

mkdir -p "$OUT"
WORK="$(mktemp -d "$CACHE_ROOT/build-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

echo "flotilla: building kube-apiserver and etcd $K8S_VERSION into $OUT (first run only; several minutes on 2 cores)"
echo "flotilla: [1/4] resolving k8s.io/kubernetes@$K8S_VERSION"
MODFILE="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
[[ -f "$MODFILE" ]] || { echo "flotilla: could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy" >&2; exit 1; }

# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with local
# paths; a consumer must replace each with the published v0.X.Y of the same release.
{
  echo "module flotilla.dev/k8s-test-binaries"
  echo
  echo "go 1.25.0"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$MODFILE" | awk -v v="$STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
GO

echo "flotilla: [2/4] resolving dependencies (go mod tidy)"
GOFLAGS=-mod=mod go mod tidy >/dev/null

export CGO_ENABLED=0
echo "flotilla: [3/4] compiling etcd"
go build -trimpath -ldflags='-s -w' -o "$WORK/etcd" go.etcd.io/etcd/server/v3
echo "flotilla: [4/4] compiling kube-apiserver (the long step)"
# -v lists each package as it is compiled: progress for a build that takes minutes.
go build -v -trimpath -ldflags='-s -w' -o "$WORK/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver 2>&1 |
  awk '{n++; if (n % 100 == 0) {printf "flotilla:   %d packages compiled\n", n; fflush()}} END {printf "flotilla:   %d packages compiled\n", n}'
[[ -x "$WORK/kube-apiserver" ]] || { echo "flotilla: kube-apiserver build failed" >&2; exit 1; }
mv "$WORK/etcd" "$WORK/kube-apiserver" "$OUT/"
echo "flotilla: done in ${SECONDS} s: $OUT/kube-apiserver, $OUT/etcd"
