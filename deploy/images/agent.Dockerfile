# syntax=docker/dockerfile:1.7
# The agent image: `flotilla-agent` on Node.js 24, non-root, read-only root filesystem
# (the agent writes nothing to disk: its state lives in Secrets in its namespace).
# Build from the repository root:  docker build -f deploy/images/agent.Dockerfile -t flotilla-agent .

ARG NODE_IMAGE=node:24-bookworm-slim

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
# The test environment is a devDependency of the agent: built with it, then pruned.
COPY integration-tests/env integration-tests/env
RUN npx turbo run build --filter=@flotilla/agent... \
 && npm prune --omit=dev --ignore-scripts \
 && rm -rf hub integration-tests */src */tsconfig.json

FROM ${NODE_IMAGE}
ENV NODE_ENV=production HOME=/tmp
WORKDIR /app
COPY --from=build /src /app
USER 10001:10001
ENTRYPOINT ["node", "/app/agent/dist/main.js"]
