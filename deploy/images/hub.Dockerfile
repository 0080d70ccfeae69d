# syntax=docker/dockerfile:1.7
# The hub image: `flotilla` (hub, CLI) on Node.js 24, non-root, read-only root filesystem,
# with the pinned kustomize, helm and sops the renderer runs for Kustomize and Helm bundles
# and SOPS-encrypted files. The same image runs the renderer (`flotilla renderer`, uid 10002 in the chart).
# Build from the repository root:  docker build -f deploy/images/hub.Dockerfile -t flotilla-hub .

ARG NODE_IMAGE=node:24-bookworm-slim
ARG GO_IMAGE=golang:1.26-bookworm

# kustomize, helm and sops, built from their pinned modules (same versions as integration-tests/tools/build-tools.sh).
FROM ${GO_IMAGE} AS tools
ARG KUSTOMIZE_VERSION=v5.8.1
ARG HELM_VERSION=v3.19.5
ARG SOPS_VERSION=v3.13.3
ENV CGO_ENABLED=0 GOBIN=/out
RUN go install sigs.k8s.io/kustomize/kustomize/v5@${KUSTOMIZE_VERSION} \
 && go install helm.sh/helm/v3/cmd/helm@${HELM_VERSION} \
 && go install github.com/getsops/sops/v3/cmd/sops@${SOPS_VERSION}

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json turbo.json tsconfig.base.json ./
COPY common/package.json common/
COPY proto/package.json proto/
COPY agent/package.json agent/
COPY hub/package.json hub/
COPY integration-tests/package.json integration-tests/
COPY integration-tests/env/package.json integration-tests/env/
RUN npm ci --ignore-scripts
COPY common common
COPY proto proto
COPY agent agent
COPY hub hub
# The test environment is a devDependency of agent and hub: built with them, then pruned.
COPY integration-tests/env integration-tests/env
RUN npx turbo run build --filter=@flotilla/hub... \
 && npm prune --omit=dev --ignore-scripts \
 && rm -rf integration-tests */src */tsconfig.json

FROM ${NODE_IMAGE}
ENV NODE_ENV=production FLOTILLA_KUSTOMIZE=/usr/local/bin/kustomize FLOTILLA_HELM=/usr/local/bin/helm FLOTILLA_SOPS=/usr/local/bin/sops HOME=/tmp
COPY --from=tools /out/kustomize /out/helm /out/sops /usr/local/bin/
WORKDIR /app
COPY --from=build /src /app
# A fixed numeric non-root user, so runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 7443 7080
ENTRYPOINT ["node", "/app/hub/dist/cli/main.js"]
CMD ["hub", "--config", "/etc/flotilla/hub.yaml"]
