#!/usr/bin/env bash
# Builds the pinned `kustomize`, `helm` and `sops` programs the hub's renderer runs for
# Kustomize and Helm bundles and SOPS-encrypted files, through the Go module proxy, and
# caches them outside the repository. Only the first run pays (a few minutes on 2 cores,
# mostly helm and sops).
#
#   FLOTILLA_KUSTOMIZE_VERSION  sigs.k8s.io/kustomize/kustomize/v5 release (default: pinned below)
#   FLOTILLA_HELM_VERSION       helm.sh/helm/v3 release (default: pinned below)
#   FLOTILLA_SOPS_VERSION       github.com/getsops/sops/v3 release (default: pinned below)
#   FLOTILLA_CACHE_DIR          cache root (default: ~/.cache/flotilla)
set -euo pipefail

# Keep in step with KUSTOMIZE_VERSION / HELM_VERSION / SOPS_VERSION in integration-tests/env/src/versions.ts.
KUSTOMIZE_VERSION="${FLOTILLA_KUSTOMIZE_VERSION:-v5.8.1}"
HELM_VERSION="${FLOTILLA_HELM_VERSION:-v3.19.5}"
CACHE_ROOT="${FLOTILLA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/flotilla}"
KUSTOMIZE_OUT="$CACHE_ROOT/tools-kustomize-$KUSTOMIZE_VERSION"
HELM_OUT="$CACHE_ROOT/tools-helm-$HELM_VERSION"
SOPS_VERSION="${FLOTILLA_SOPS_VERSION:-v3.13.3}"
SOPS_OUT="$CACHE_ROOT/tools-sops-$SOPS_VERSION"

if [[ -x "$KUSTOMIZE_OUT/kustomize" && -x "$HELM_OUT/helm" && -x "$SOPS_OUT/sops" ]]; then
  echo "flotilla: kustomize $KUSTOMIZE_VERSION, helm $HELM_VERSION and sops $SOPS_VERSION already built in $CACHE_ROOT"
  exit 0
fi

command -v go >/dev/null || { echo "flotilla: the Go toolchain is required to build kustomize, helm and sops (install Go 1.25+)" >&2; exit 1; }

mkdir -p "$CACHE_ROOT"
WORK="$(mktemp -d "$CACHE_ROOT/build-XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"

# `go install pkg@version` builds with the module's own go.mod (its exact pinned
# dependencies, as the upstream release does); GOBIN points it at our work dir.
if [[ ! -x "$KUSTOMIZE_OUT/kustomize" ]]; then
  started=$SECONDS
  echo "flotilla: [1/3] building kustomize $KUSTOMIZE_VERSION into $KUSTOMIZE_OUT (first run only)"
  CGO_ENABLED=0 GOBIN="$WORK/bin" go install -trimpath -ldflags="-s -w -X sigs.k8s.io/kustomize/api/provenance.version=$KUSTOMIZE_VERSION" \
    "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" 2>"$WORK/kustomize.log" || {
    cat "$WORK/kustomize.log" >&2
    echo "flotilla: could not build kustomize $KUSTOMIZE_VERSION from the Go module proxy (set FLOTILLA_KUSTOMIZE_VERSION to a published v5.x tag)" >&2
    exit 1
  }
  mkdir -p "$KUSTOMIZE_OUT"
  mv "$WORK/bin/kustomize" "$KUSTOMIZE_OUT/"
  echo "flotilla: done in $((SECONDS - started)) s: $KUSTOMIZE_OUT/kustomize"
else
  echo "flotilla: [1/3] kustomize $KUSTOMIZE_VERSION already built in $KUSTOMIZE_OUT"
fi

if [[ ! -x "$HELM_OUT/helm" ]]; then
  started=$SECONDS
  echo "flotilla: [2/3] building helm $HELM_VERSION into $HELM_OUT (first run only; a few minutes on 2 cores)"
  CGO_ENABLED=0 GOBIN="$WORK/bin" go install -trimpath -ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" 2>"$WORK/helm.log" || {
    cat "$WORK/helm.log" >&2
    echo "flotilla: could not build helm $HELM_VERSION from the Go module proxy (set FLOTILLA_HELM_VERSION to a published v3.x tag)" >&2
    exit 1
  }
  mkdir -p "$HELM_OUT"
  mv "$WORK/bin/helm" "$HELM_OUT/"
  echo "flotilla: done in $((SECONDS - started)) s: $HELM_OUT/helm"
else
  echo "flotilla: [2/3] helm $HELM_VERSION already built in $HELM_OUT"
fi

if [[ ! -x "$SOPS_OUT/sops" ]]; then
  started=$SECONDS
  echo "flotilla: [3/3] building sops $SOPS_VERSION into $SOPS_OUT (first run only; a few minutes on 2 cores)"
  # sops' version is a constant in its source: no ldflags needed.
  CGO_ENABLED=0 GOBIN="$WORK/bin" go install -trimpath -ldflags="-s -w" \
    "github.com/getsops/sops/v3/cmd/sops@$SOPS_VERSION" 2>"$WORK/sops.log" || {
    cat "$WORK/sops.log" >&2
    echo "flotilla: could not build sops $SOPS_VERSION from the Go module proxy (set FLOTILLA_SOPS_VERSION to a published v3.x tag)" >&2
    exit 1
  }
  mkdir -p "$SOPS_OUT"
  mv "$WORK/bin/sops" "$SOPS_OUT/"
  echo "flotilla: done in $((SECONDS - started)) s: $SOPS_OUT/sops"
else
  echo "flotilla: [3/3] sops $SOPS_VERSION already built in $SOPS_OUT"
fi
