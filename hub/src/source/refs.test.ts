import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '@flotilla/common';
import { refMayMove, resolveRef, validateSourceRef } from './refs.js';
import type { ServerRef } from './refs.js';

const sha = (c: string): string => c.repeat(40);
const REFS: ServerRef[] = [
  { ref: 'HEAD', oid: sha('1') },
  { ref: 'refs/heads/main', oid: sha('1') },
  { ref: 'refs/tags/v1.2.3', oid: sha('2') },
  { ref: 'refs/tags/v1.2.10', oid: sha('a'), peeled: sha('3') }, // annotated: the commit is the peeled oid
  { ref: 'refs/tags/v1.3.0', oid: sha('4') },
  { ref: 'refs/tags/v1.4.0-rc.1', oid: sha('5') },
  { ref: 'refs/tags/2.0.0', oid: sha('6') },
  { ref: 'refs/tags/release-latest', oid: sha('7') },
];

test('semver-ranges-pick-the-highest-matching-tag', () => {
  const pick = (range: string): string => resolveRef({ kind: 'semver', range }, REFS).fetchRef;
  assert.equal(pick('v1.2.x'), 'refs/tags/v1.2.10');
  assert.equal(pick('^1.2.0'), 'refs/tags/v1.3.0');
  assert.equal(pick('>=1.0.0 <2.0.0'), 'refs/tags/v1.3.0');
  assert.equal(pick('>=2'), 'refs/tags/2.0.0');
  assert.equal(pick('~1.2.3'), 'refs/tags/v1.2.10');
});

test('an-annotated-tag-resolves-to-its-commit', () => {
  const r = resolveRef({ kind: 'semver', range: 'v1.2.x' }, REFS);
  assert.equal(r.commit, sha('3'));
  assert.equal(r.describe, 'tag v1.2.10 (semver v1.2.x)');
});

test('pre-releases-match-only-a-range-that-names-one', () => {
  assert.equal(
    resolveRef({ kind: 'semver', range: '>=1.4.0-rc.0 <1.5.0' }, REFS).fetchRef,
    'refs/tags/v1.4.0-rc.1',
  );
  assert.throws(
    () => resolveRef({ kind: 'semver', range: '1.4.x' }, REFS),
    /no tag matches semver range "1.4.x"/,
  );
});

test('branch-tag-and-commit-resolve-and-missing-ones-are-not-found', () => {
  assert.deepEqual(resolveRef({ kind: 'branch', name: 'main' }, REFS).commit, sha('1'));
  assert.equal(resolveRef({ kind: 'tag', name: 'v1.2.3' }, REFS).fetchRef, 'refs/tags/v1.2.3');
  assert.equal(resolveRef({ kind: 'commit', sha: sha('4') }, REFS).fetchRef, 'refs/tags/v1.3.0');
  assert.equal(resolveRef({ kind: 'commit', sha: sha('9') }, REFS).fetchRef, sha('9'));
  assert.throws(
    () => resolveRef({ kind: 'branch', name: 'dev' }, REFS),
    (e: Error & { code?: string }) =>
      e.code === 'NOT_FOUND' && /branch "dev" not found/.test(e.message),
  );
  assert.throws(() => resolveRef({ kind: 'tag', name: 'v9' }, REFS), /tag "v9" not found/);
});

test('bad-refs-in-config-are-errors-naming-the-field', () => {
  const field = (f: () => unknown): string => {
    try {
      f();
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.field;
    }
    return 'no error';
  };
  assert.equal(
    field(() => validateSourceRef({ kind: 'semver', range: 'not a range' }, 'sources[0]')),
    'sources[0].semver',
  );
  assert.equal(
    field(() => validateSourceRef({ kind: 'commit', sha: 'abc123' }, 'sources[0]')),
    'sources[0].commit',
  );
  assert.equal(
    field(() => validateSourceRef({ kind: 'branch', name: 'refs/heads/main' }, 's')),
    's.branch',
  );
  assert.equal(
    field(() => validateSourceRef({ kind: 'tag', name: 'a b' }, 's')),
    's.tag',
  );
});

test('pushes-that-can-move-a-source-are-recognized', () => {
  assert.ok(refMayMove({ kind: 'branch', name: 'main' }, 'refs/heads/main'));
  assert.ok(!refMayMove({ kind: 'branch', name: 'main' }, 'refs/heads/dev'));
  assert.ok(refMayMove({ kind: 'semver', range: '^1' }, 'refs/tags/v1.9.0'));
  assert.ok(!refMayMove({ kind: 'semver', range: '^1' }, 'refs/heads/main'));
  assert.ok(refMayMove({ kind: 'tag', name: 'v1' }, 'refs/tags/v1'));
  assert.ok(!refMayMove({ kind: 'commit', sha: sha('1') }, 'refs/heads/main'));
});
