#!/usr/bin/env bash
# The integration tests' `npm test` (turbo runs it in integration-tests/). Test files run
# FLOTILLA_TEST_CONCURRENCY at a time (2 by default: they wait on real processes more than
# they compute; node --test starts them in name order whatever order they are given in).
# FLOTILLA_TEST_SUBSET=node24 runs only the files in node24-tests.txt: test.sh's Node.js 24
# pass (docs/testing.md says why those).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
case "${FLOTILLA_TEST_SUBSET:-}" in
  '') mapfile -t files < <(find dist -name '*.test.js' | sort) ;;
  node24)
    # src/x/y.test.ts → dist/x/y.test.js
    mapfile -t files < <(sed -e 's/#.*//' -e 's/[[:space:]]*$//' -e '/^$/d' \
      -e 's|^src/|dist/|' -e 's|\.ts$|.js|' tools/node24-tests.txt)
    for f in "${files[@]}"; do
      [[ -f "$f" ]] || { echo "integration-tests/tools/node24-tests.txt names $f, which the build did not produce" >&2; exit 1; }
    done
    ;;
  *) echo "FLOTILLA_TEST_SUBSET: unknown subset '${FLOTILLA_TEST_SUBSET}' (known: node24)" >&2; exit 1 ;;
esac
exec node --test --test-concurrency="${FLOTILLA_TEST_CONCURRENCY:-2}" --enable-source-maps "${files[@]}"
