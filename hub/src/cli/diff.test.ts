import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLocalRepo } from '@flotilla/test-env';
import type { WorkRepo } from '@flotilla/test-env';
import { bundleYaml, clusterYaml, configMap } from '../render/testing.js';
import { diffCommand } from './diff.js';
import { runCli } from './main.js';
import { unifiedDiff } from './line-diff.js';

function capture(): {
  io: { stdout: { write(t: string): void }; stderr: { write(t: string): void } };
  out: () => string;
  err: () => string;
} {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (t) => (out += t) }, stderr: { write: (t) => (err += t) } },
    out: () => out,
    err: () => err,
  };
}

describe('flotilla diff', () => {
  let repo: WorkRepo;
  let dir = '';
  const revs: Record<string, string> = {};

  before(async () => {
    repo = await createLocalRepo();
    dir = repo.dir;
    revs.base = await repo.commit('base', {
      'clusters/a.yaml': clusterYaml('a', { env: 'prod' }),
      'clusters/b.yaml': clusterYaml('b', { env: 'dev' }),
      'bundles/app/bundle.yaml': bundleYaml(
        'app',
        '  namespace: app\n  targets:\n    - clusterSelector: { matchLabels: { env: prod } }\n',
      ),
      'bundles/app/manifests/cm.yaml': configMap('app', { color: 'blue', size: 'm' }),
    });
    revs.change = await repo.commit('change', {
      'bundles/app/manifests/cm.yaml': configMap('app', { color: 'green', size: 'm' }),
      'bundles/app/manifests/extra.yaml': configMap('extra'),
    });
    await repo.commit('same-output', { 'README.md': 'docs only\n' });
    await repo.commit('broken', { 'bundles/app/manifests/cm.yaml': 'kind: [' });
  });
  after(() => repo.dispose());

  test('shows-added-and-changed-objects-per-cluster-with-a-unified-diff-and-exits-1', async () => {
    const c = capture();
    const code = await diffCommand(
      ['--repo', dir, '--from', revs.base as string, '--to', 'HEAD~2'],
      c.io,
    );
    assert.equal(code, 1, c.err());
    assert.equal(
      c.out(),
      [
        'cluster a: 1 added, 0 removed, 1 changed',
        '  ~ app: ConfigMap app/app (v1)',
        '      @@ -1,6 +1,6 @@',
        '       apiVersion: v1',
        '       data:',
        '      -  color: blue',
        '      +  color: green',
        '         size: m',
        '       kind: ConfigMap',
        '       metadata:',
        '  + app: ConfigMap app/extra (v1)',
        '1 of 2 clusters change',
        '',
      ].join('\n'),
    );
  });

  test('no-change-in-rendered-output-exits-0', async () => {
    const c = capture();
    assert.equal(await diffCommand(['--repo', dir, '--from', 'HEAD~2', '--to', 'HEAD~1'], c.io), 0);
    assert.equal(c.out(), 'no cluster changes\n');
  });

  test('the-cluster-filter-limits-the-output', async () => {
    const c = capture();
    assert.equal(
      await diffCommand(
        [
          '--repo',
          dir,
          '--from',
          revs.base as string,
          '--to',
          revs.change as string,
          '--cluster',
          'b',
        ],
        c.io,
      ),
      0,
    );
    assert.equal(c.out(), 'no cluster changes\n');
  });

  test('render-errors-at-the-target-revision-are-printed-and-exit-2-and-a-broken-bundle-is-not-a-removal', async () => {
    const c = capture();
    assert.equal(await diffCommand(['--repo', dir, '--from', 'HEAD~1', '--to', 'HEAD'], c.io), 2);
    assert.match(c.err(), /error at HEAD: bundles\/app\/manifests\/cm.yaml:1: invalid YAML/);
    assert.doesNotMatch(c.out(), /  - app/);
    assert.match(c.out(), /! app: not rendered at this revision/);
  });

  test('an-unknown-revision-or-missing-flag-exits-2', async () => {
    const c = capture();
    assert.equal(await diffCommand(['--repo', dir, '--from', 'nope', '--to', 'HEAD'], c.io), 2);
    assert.match(c.err(), /"nope" is not a commit/);
    assert.equal(await diffCommand(['--repo', dir, '--to', 'HEAD'], capture().io), 2);
  });

  test('flotilla-diff-is-a-registered-command', async () => {
    const c = capture();
    assert.equal(await runCli(['diff', '--help'], { ...c.io, env: {}, cwd: process.cwd() }), 0);
    assert.match(c.out(), /^Usage: flotilla diff --from REV --to REV/);
  });

  test('unified-diff-hunks-have-correct-ranges', () => {
    assert.deepEqual(unifiedDiff(['a', 'b', 'c'], ['a', 'x', 'c'], 1), [
      '@@ -1,3 +1,3 @@',
      ' a',
      '-b',
      '+x',
      ' c',
    ]);
    assert.deepEqual(unifiedDiff(['a'], ['a', 'b'], 0), ['@@ -1,0 +2,1 @@', '+b']);
    assert.deepEqual(unifiedDiff([], []), []);
  });
});
