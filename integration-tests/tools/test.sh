#!/usr/bin/env bash
# `npm test`: prerequisites; build + lint + every package's tests through turbo on this
# machine's Node.js; the tests again on Node.js 24 (what the images run): every package's
# unit tests and the integration files in integration-tests/tools/node24-tests.txt
# (FLOTILLA_SKIP_NODE24=1 skips that pass); then one summary line over everything
# ("N passed, N failed, N skipped").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export TURBO_TELEMETRY_DISABLED=1
bash integration-tests/tools/prereqs.sh
logs="$(mktemp -d -t flotilla-test-XXXXXX)"
trap 'rm -rf "$logs"' EXIT
started=$SECONDS
set +e
echo "flotilla: build, lint and test on Node.js $(node --version)"
# Two tasks at a time on this 2-core machine: with three, timing-sensitive tests failed at
# load averages over 14 (docs/testing.md).
npx turbo run build lint test --concurrency=2 "$@" 2>&1 | tee "$logs/node-default.log"
rc=${PIPESTATUS[0]}
if [[ "$rc" == 0 && -z "${FLOTILLA_SKIP_NODE24:-}" ]]; then
  node24="$(bash integration-tests/tools/node24.sh)" || rc=1
  if [[ "$rc" == 0 ]]; then
    echo "flotilla: test again on Node.js $("$node24" --version)"
    # The hub's unit files two at a time here: beside ten integration files, not all of them.
    FLOTILLA_TEST_SUBSET=node24 FLOTILLA_HUB_TEST_CONCURRENCY=2 PATH="$(dirname "$node24"):$PATH" \
      npx turbo run test --concurrency=2 "$@" 2>&1 | tee "$logs/node-24.log"
    rc=${PIPESTATUS[0]}
  fi
fi
set -e
node integration-tests/tools/test-summary.mjs "$rc" "$((SECONDS - started))" "$logs"/*.log
