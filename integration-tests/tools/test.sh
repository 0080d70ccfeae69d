#!/usr/bin/env bash
# `npm test`: prerequisites, then build + lint + every package's tests through turbo, then
# one summary line over all packages ("N passed, N failed, N skipped").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export TURBO_TELEMETRY_DISABLED=1
bash integration-tests/tools/prereqs.sh
log="$(mktemp -t flotilla-test-XXXXXX.log)"
started=$SECONDS
set +e
npx turbo run build lint test --concurrency=2 "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
set -e
node integration-tests/tools/test-summary.mjs "$log" "$rc" "$((SECONDS - started))"
summary_rc=$?
rm -f "$log"
exit $(( rc != 0 ? rc : summary_rc ))
