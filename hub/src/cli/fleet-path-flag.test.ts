// `flotilla render --path` and `flotilla diff --path`: a fleet kept in a subdirectory of a
// larger repository (a monorepo), read exactly as a hub source with `path` reads it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLocalRepo, runGit } from '@flotilla/test-env';
import type { WorkRepo } from '@flotilla/test-env';
import { bundleYaml, clusterYaml, configMap } from '../render/testing.js';
import { diffCommand } from './diff.js';
import { renderCommand } from './render.js';

type Run = { code: number; out: string; err: string };

async function run(command: typeof renderCommand, argv: string[], cwd?: string): Promise<Run> {
  let out = '';
  let err = '';
  const code = await command(argv, {
    stdout: { write: (t: string) => (out += t) },
    stderr: { write: (t: string) => (err += t) },
    ...(cwd ? { cwd } : {}),
  });
  return { code, out, err };
}

const FLEET = 'deploy/fleet';

describe('flotilla render and diff --path', () => {
  let repo: WorkRepo;
  let dir = '';
  const revs: Record<string, string> = {};

  before(async () => {
    repo = await createLocalRepo();
    dir = repo.dir;
    revs.base = await repo.commit('base', {
      // A fleet at the root too: --path must read only the subdirectory.
      'clusters/root-only.yaml': clusterYaml('root-only', { env: 'prod' }),
      'deploy/shared/cm.yaml': configMap('shared'),
      [`${FLEET}/clusters/a.yaml`]: clusterYaml('a', { env: 'prod' }),
      [`${FLEET}/bundles/app/bundle.yaml`]: bundleYaml(
        'app',
        '  namespace: app\n  targets:\n    - clusterSelector: {}\n',
      ),
      [`${FLEET}/bundles/app/manifests/cm.yaml`]: configMap('app', { color: 'blue' }),
      // Reaches outside the fleet's root through "..": refused like leaving the repository.
      [`${FLEET}/bundles/escape/bundle.yaml`]: bundleYaml(
        'escape',
        '  namespace: app\n  source: { path: ../../../shared }\n  targets:\n    - clusterSelector: {}\n',
      ),
    });
    revs['outside-only'] = await repo.commit('outside-only', {
      'src/main.go': 'package main\n',
      'README.md': 'docs\n',
    });
    revs.inside = await repo.commit('inside', {
      [`${FLEET}/bundles/app/manifests/cm.yaml`]: configMap('app', { color: 'green' }),
    });
    revs['moved-away'] = await repo.commit('moved-away', { [FLEET]: null });
  });
  after(() => repo.dispose());

  test('render-path-reads-only-the-fleet-directory-and-a-bundle-cannot-leave-it', async () => {
    await runGit(['checkout', '-q', revs.inside as string], dir);
    const r = await run(renderCommand, ['--repo', dir, '--path', FLEET, '--cluster', 'a']);
    assert.equal(r.code, 1, 'the escaping bundle is a render error');
    assert.equal(
      r.err,
      'error: bundles/escape/bundle.yaml:7: spec.source.path "../../../shared" leaves the repository (the fleet\'s root directory) [bundle escape]\n',
    );
    assert.equal(
      r.out,
      [
        '---',
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        '  name: app',
        '  labels:',
        '    flotilla.dev/bundle: app',
        '  namespace: app',
        'data:',
        '  color: green',
        '',
      ].join('\n'),
    );
    const root = await run(renderCommand, ['--repo', dir, '--cluster', 'a']);
    assert.match(root.err, /cluster "a" not found/, 'without --path the root is the fleet');
  });

  test('render-path-is-relative-to-repo-which-defaults-to-the-current-directory', async () => {
    await runGit(['checkout', '-q', revs.inside as string], dir);
    const r = await run(
      renderCommand,
      ['--path', `${FLEET}/`, '--cluster', 'a', '-o', 'json'],
      dir,
    );
    assert.equal((JSON.parse(r.out) as { cluster: string }).cluster, 'a');
  });

  test('render-path-errors-name-the-path-and-exit-2', async () => {
    const bad = await run(renderCommand, ['--repo', dir, '--path', '../x', '--cluster', 'a']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /^flotilla render: --path: "\.\.\/x" must stay inside the repository/);
    const missing = await run(renderCommand, ['--repo', dir, '--path', 'nope', '--cluster', 'a']);
    assert.equal(missing.code, 2);
    assert.match(missing.err, /fleet path "nope" does not exist in /);
  });

  test('diff-path-ignores-commits-outside-the-fleet-directory', async () => {
    const r = await run(diffCommand, [
      '--repo',
      dir,
      '--path',
      FLEET,
      '--from',
      revs.base as string,
      '--to',
      revs['outside-only'] as string,
    ]);
    assert.equal(r.code, 2, 'the escaping bundle is a render error at --to');
    assert.equal(r.out, 'no cluster changes\n');
  });

  test('diff-path-shows-the-change-inside-the-fleet-directory', async () => {
    const r = await run(diffCommand, [
      '--repo',
      dir,
      '--path',
      FLEET,
      '--from',
      revs['outside-only'] as string,
      '--to',
      revs.inside as string,
    ]);
    assert.match(
      r.err,
      /^error at [0-9a-f]{40}: bundles\/escape\/bundle\.yaml:7: .*leaves the repository/,
    );
    assert.equal(
      r.out,
      [
        'cluster a: 0 added, 0 removed, 1 changed',
        '  ~ app: ConfigMap app/app (v1)',
        '      @@ -1,6 +1,6 @@',
        '       apiVersion: v1',
        '       data:',
        '      -  color: blue',
        '      +  color: green',
        '       kind: ConfigMap',
        '       metadata:',
        '         labels:',
        '  ! escape: not rendered at this revision (error or paused); the cluster keeps what it has',
        '1 of 1 clusters change',
        '',
      ].join('\n'),
    );
  });

  test('diff-path-missing-at-a-revision-names-the-path-and-the-commit', async () => {
    const r = await run(diffCommand, [
      '--repo',
      dir,
      '--path',
      FLEET,
      '--from',
      revs.inside as string,
      '--to',
      'main',
    ]);
    assert.equal(r.code, 2);
    assert.equal(
      r.err,
      `flotilla diff: fleet path "${FLEET}" does not exist at commit ${revs['moved-away']}\n`,
    );
    const usage = await run(diffCommand, ['--path', '/abs', '--from', 'a', '--to', 'b']);
    assert.equal(usage.code, 2);
    assert.match(usage.err, /--path: "\/abs" must be relative to the repository root/);
  });

  test('help-texts-describe-path', async () => {
    assert.match((await run(renderCommand, ['--help'])).out, /\[--path PATH\]/);
    assert.match((await run(diffCommand, ['--help'])).out, /\[--path PATH\]/);
  });
});
