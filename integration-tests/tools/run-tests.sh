#!/usr/bin/env bash
# The integration tests' `npm test` (turbo runs it in integration-tests/). Test files run
# FLOTILLA_TEST_CONCURRENCY at a time (3 by default: they wait on real processes more than
# they compute), the slowest first (slowest-tests.txt), so that the run does not end on one
# long file alone. FLOTILLA_TEST_SUBSET=node24 runs only the files in node24-tests.txt:
# test.sh's Node.js 24 pass (docs/testing.md says why those).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
listed() { sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' "tools/$1"; }
# src/x/y.test.ts → dist/x/y.test.js
compiled() { sed -e 's|^src/|dist/|' -e 's|\.ts$|.js|'; }
mapfile -t all < <(find dist -name '*.test.js' | sort)
files=()
case "${FLOTILLA_TEST_SUBSET:-}" in
  '')
    mapfile -t first < <(listed slowest-tests.txt | compiled)
    for f in "${first[@]}"; do [[ -f "$f" ]] && files+=("$f"); done
    for f in "${all[@]}"; do [[ " ${first[*]} " == *" $f "* ]] || files+=("$f"); done
    ;;
  node24)
    mapfile -t files < <(listed node24-tests.txt | compiled)
    for f in "${files[@]}"; do
      [[ -f "$f" ]] || { echo "integration-tests/tools/node24-tests.txt names $f, which the build did not produce" >&2; exit 1; }
    done
    ;;
  *) echo "FLOTILLA_TEST_SUBSET: unknown subset '${FLOTILLA_TEST_SUBSET}' (known: node24)" >&2; exit 1 ;;
esac
exec node --test --test-concurrency="${FLOTILLA_TEST_CONCURRENCY:-3}" --enable-source-maps "${files[@]}"
