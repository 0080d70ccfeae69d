#!/usr/bin/env bash
# Checks and prepares everything integration-tests/ needs. Idempotent; well under a
# second when everything is cached. Every failure says how to fix it.
#
#   FLOTILLA_SKIP_K8S_BUILD=1   do not build kube-apiserver/etcd (KUBECONFIG set, or k3s via a container runtime)
#   FLOTILLA_SKIP_NATS_BUILD=1  do not build nats-server (container runtime)
#   KUBECONFIG                  tests use that cluster; no build needed
#   FLOTILLA_SKIP_TOOLS_BUILD=1 do not build kustomize/helm
#   FLOTILLA_KUBE_APISERVER, FLOTILLA_ETCD, FLOTILLA_NATS_SERVER   use these binaries instead
#   FLOTILLA_KUSTOMIZE, FLOTILLA_HELM, FLOTILLA_REGISTRY            use these programs instead
set -euo pipefail

TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Go's standard install location is often missing from non-login shells' PATH.
if ! command -v go >/dev/null && [[ -x /usr/local/go/bin/go ]]; then export PATH="$PATH:/usr/local/go/bin"; fi
failed=0
fail() { echo "flotilla: MISSING $1" >&2; failed=1; }

# Node >= 20.19 (require(esm) and the engines field of every package).
if command -v node >/dev/null; then
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' ||
    fail "Node.js >= 20.19 (found $(node --version)): install a current Node.js LTS"
else
  fail "Node.js >= 20.19: install a current Node.js LTS"
fi

# git and its smart-HTTP CGI program (the test Git server runs it).
if command -v git >/dev/null; then
  [[ -x "$(git --exec-path)/git-http-backend" ]] ||
    fail "git-http-backend in $(git --exec-path): install the full git package (Debian/Ubuntu: apt-get install git)"
else
  fail "git: install git (Debian/Ubuntu: apt-get install git)"
fi

# gpg signs commits in the signed-commit tests (the hub itself verifies with openpgp.js).
command -v gpg >/dev/null || fail "gpg: install GnuPG (Debian/Ubuntu: apt-get install gnupg)"

# Chromium: the fleet page's real-browser test (src/ui/) drives Debian's Chromium.
if [[ ! -x /usr/bin/chromium ]]; then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "flotilla: installing chromium for the fleet page's browser test (apt-get, about 40 s)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } ||
      fail "chromium: apt-get install -y chromium failed (see above)"
  else
    fail "chromium at /usr/bin/chromium (the fleet page's browser test): as root, apt-get update && apt-get install -y chromium"
  fi
fi

check_binary() { # <env var name> <path>
  local var="$1" path="$2"
  [[ -x "$path" ]] || fail "$var=$path is not an executable file: fix the path or unset $var"
}

if [[ -n "${KUBECONFIG:-}" || -n "${FLOTILLA_SKIP_K8S_BUILD:-}" ]]; then
  echo "flotilla: skipping the kube-apiserver/etcd build (KUBECONFIG or FLOTILLA_SKIP_K8S_BUILD is set)"
elif [[ -n "${FLOTILLA_KUBE_APISERVER:-}" || -n "${FLOTILLA_ETCD:-}" ]]; then
  [[ -n "${FLOTILLA_KUBE_APISERVER:-}" ]] && check_binary FLOTILLA_KUBE_APISERVER "$FLOTILLA_KUBE_APISERVER"
  [[ -n "${FLOTILLA_ETCD:-}" ]] && check_binary FLOTILLA_ETCD "$FLOTILLA_ETCD"
  if [[ -z "${FLOTILLA_KUBE_APISERVER:-}" || -z "${FLOTILLA_ETCD:-}" ]]; then "$TOOLS/build-k8s.sh" || fail "kube-apiserver/etcd: see the build output above"; fi
else
  "$TOOLS/build-k8s.sh" || fail "kube-apiserver/etcd: see the build output above (needs Go and the Go module proxy)"
fi

if [[ -n "${FLOTILLA_NATS_SERVER:-}" ]]; then
  check_binary FLOTILLA_NATS_SERVER "$FLOTILLA_NATS_SERVER"
elif [[ -n "${FLOTILLA_SKIP_NATS_BUILD:-}" ]]; then
  echo "flotilla: skipping the nats-server build (FLOTILLA_SKIP_NATS_BUILD is set)"
else
  "$TOOLS/build-nats.sh" || fail "nats-server: see the build output above (needs Go and the Go module proxy)"
fi

# kustomize, helm and sops: the renderer runs them for Kustomize and Helm bundles and
# SOPS-encrypted files.
if [[ -n "${FLOTILLA_KUSTOMIZE:-}" || -n "${FLOTILLA_HELM:-}" || -n "${FLOTILLA_SOPS:-}" ]]; then
  [[ -n "${FLOTILLA_KUSTOMIZE:-}" ]] && check_binary FLOTILLA_KUSTOMIZE "$FLOTILLA_KUSTOMIZE"
  [[ -n "${FLOTILLA_HELM:-}" ]] && check_binary FLOTILLA_HELM "$FLOTILLA_HELM"
  [[ -n "${FLOTILLA_SOPS:-}" ]] && check_binary FLOTILLA_SOPS "$FLOTILLA_SOPS"
  if [[ -z "${FLOTILLA_KUSTOMIZE:-}" || -z "${FLOTILLA_HELM:-}" || -z "${FLOTILLA_SOPS:-}" ]]; then "$TOOLS/build-tools.sh" || fail "kustomize/helm/sops: see the build output above"; fi
elif [[ -n "${FLOTILLA_SKIP_TOOLS_BUILD:-}" ]]; then
  echo "flotilla: skipping the kustomize/helm/sops build (FLOTILLA_SKIP_TOOLS_BUILD is set)"
else
  "$TOOLS/build-tools.sh" || fail "kustomize/helm/sops: see the build output above (needs Go and the Go module proxy)"
fi

# The OCI registry (CNCF Distribution) the Helm chart tests push charts to.
if [[ -n "${FLOTILLA_REGISTRY:-}" ]]; then
  check_binary FLOTILLA_REGISTRY "$FLOTILLA_REGISTRY"
elif [[ -n "${FLOTILLA_SKIP_TOOLS_BUILD:-}" ]]; then
  echo "flotilla: skipping the registry build (FLOTILLA_SKIP_TOOLS_BUILD is set)"
else
  "$TOOLS/build-registry.sh" || fail "registry (CNCF Distribution): see the build output above (needs Go and the Go module proxy)"
fi

# Toxiproxy, the TCP proxy of the network-fault tests.
if [[ -n "${FLOTILLA_TOXIPROXY:-}" ]]; then
  check_binary FLOTILLA_TOXIPROXY "$FLOTILLA_TOXIPROXY"
elif [[ -n "${FLOTILLA_SKIP_TOOLS_BUILD:-}" ]]; then
  echo "flotilla: skipping the toxiproxy build (FLOTILLA_SKIP_TOOLS_BUILD is set)"
else
  "$TOOLS/build-toxiproxy.sh" || fail "toxiproxy: see the build output above (needs Go and the Go module proxy)"
fi

if [[ "$failed" != 0 ]]; then
  echo "flotilla: prerequisites missing (see above); tests needing them fail under CI=true and are skipped otherwise" >&2
  exit 1
fi
echo "flotilla: all integration-test prerequisites are present"
