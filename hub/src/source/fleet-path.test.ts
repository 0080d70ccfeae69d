import assert from 'node:assert/strict';
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError } from '@flotilla/common';
import { createLocalRepo, runGit } from '@flotilla/test-env';
import type { WorkRepo } from '@flotilla/test-env';
import { compileHubConfig } from '../config/hub-config.js';
import { FleetPathMissingError, validateFleetPath } from './fleet-path.js';
import { fleetTreeOid, readCommitTree } from './git-tree.js';
import { readDirectoryTree } from './tree.js';

const compile = (source: Record<string, unknown>): ReturnType<typeof compileHubConfig> =>
  compileHubConfig(
    { sources: [{ name: 'fleet', url: 'https://git.example.com/mono.git', ...source }] },
    'hub.yaml',
    { defaultCacheDir: '/tmp/c' },
  );

const configError = (source: Record<string, unknown>): ConfigError => {
  try {
    compile(source);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err;
  }
  return assert.fail(`expected a ConfigError for ${JSON.stringify(source)}`);
};

test('source-path-and-poll-jitter-default-to-the-repo-root-and-a-tenth', () => {
  const s = compile({}).sources[0];
  assert.equal(s?.path, '');
  assert.equal(s?.pollJitter, 0.1);
  const t = compile({ path: 'deploy/examples/fleet/', pollJitter: 0 }).sources[0];
  assert.equal(t?.path, 'deploy/examples/fleet', 'a trailing slash is dropped');
  assert.equal(t?.pollJitter, 0);
  assert.equal(compile({ path: '.' }).sources[0]?.path, '');
});

test('bad-source-paths-are-errors-naming-the-field-and-the-path', () => {
  const cases: [unknown, RegExp][] = [
    ['/deploy/fleet', /no leading "\/"/],
    ['../fleet', /no "\.\." segments/],
    ['deploy/../../etc', /no "\.\." segments/],
    ['deploy//fleet', /normalised .*write "deploy\/fleet"/],
    ['./deploy/fleet', /normalised .*write "deploy\/fleet"/],
    ['deploy\\fleet', /POSIX path/],
    ['.git/objects', /\.git/],
    ['', /non-empty string/],
    [42, /non-empty string/],
  ];
  for (const [path, problem] of cases) {
    const err = configError({ path });
    assert.equal(err.field, 'sources[0].path', `field for ${JSON.stringify(path)}`);
    assert.match(err.message, /^hub\.yaml: sources\[0\]\.path: /);
    assert.match(err.message, problem, `message for ${JSON.stringify(path)}: ${err.message}`);
  }
});

test('bad-poll-jitter-is-an-error-naming-the-field', () => {
  for (const pollJitter of [-0.1, 1.5, '10%', Number.NaN]) {
    const err = configError({ pollJitter });
    assert.equal(err.field, 'sources[0].pollJitter');
    assert.match(err.message, /must be a number from 0 to 1/);
  }
});

test('validate-fleet-path-names-the-given-field', () => {
  assert.throws(
    () => validateFleetPath('a/../b', '--path'),
    (err: unknown) => err instanceof ConfigError && err.field === '--path',
  );
  assert.equal(validateFleetPath(undefined, '--path'), '');
  assert.equal(validateFleetPath('a/b', '--path'), 'a/b');
});

describe('reading the fleet under a path', () => {
  let repo: WorkRepo;
  let dir = '';
  let head = '';

  before(async () => {
    repo = await createLocalRepo();
    dir = repo.dir;
    await repo.writeFiles({
      'clusters/root.yaml': 'root\n',
      'deploy/fleet/clusters/a.yaml': 'a\n',
      'deploy/fleet/bundles/x/bundle.yaml': 'x\n',
      'deploy/fleet/notes.txt': 'read, relative to the path\n',
      'deploy/fleet/.hidden/x.yaml': 'hidden: not read\n',
      'deploy/file': 'a file\n',
    });
    await symlink('fleet', join(dir, 'deploy/link'));
    head = await repo.commit('first');
  });
  after(() => repo.dispose());

  test('a-commit-is-read-below-the-path-with-paths-relative-to-it', async () => {
    const gitdir = join(dir, '.git');
    const tree = await readCommitTree({ gitdir, commit: head, cache: {}, path: 'deploy/fleet' });
    assert.deepEqual(tree.paths(), ['bundles/x/bundle.yaml', 'clusters/a.yaml', 'notes.txt']);
    const oid = await fleetTreeOid({ gitdir, commit: head, cache: {}, path: 'deploy/fleet' });
    assert.equal(oid, (await runGit(['rev-parse', `${head}:deploy/fleet`], dir)).trim());
  });

  test('a-missing-path-a-file-or-a-symlink-is-a-fleet-path-error-naming-path-and-commit', async () => {
    const gitdir = join(dir, '.git');
    for (const [path, problem] of [
      ['deploy/nope', /fleet path "deploy\/nope" does not exist at commit [0-9a-f]{40}/],
      ['deploy/file', /fleet path "deploy\/file" is not a directory \("deploy\/file" is a file\)/],
      ['deploy/link', /is not a directory \("deploy\/link" is a symbolic link\)/],
      ['deploy/link/clusters', /is not a directory \("deploy\/link" is a symbolic link\)/],
    ] as const) {
      await assert.rejects(
        readCommitTree({ gitdir, commit: head, cache: {}, path }),
        (err: unknown) =>
          err instanceof FleetPathMissingError &&
          err.code === 'NOT_FOUND' &&
          problem.test(err.message) &&
          err.message.includes(head),
      );
    }
  });

  test('a-directory-is-read-below-the-path-and-a-symlink-on-the-way-is-refused', async () => {
    const tree = await readDirectoryTree(dir, { path: 'deploy/fleet' });
    assert.deepEqual(tree.paths(), ['bundles/x/bundle.yaml', 'clusters/a.yaml', 'notes.txt']);
    const whole = await readDirectoryTree(dir);
    assert.deepEqual(whole.paths(), [
      'clusters/root.yaml',
      'deploy/file',
      'deploy/fleet/.hidden/x.yaml', // hidden only at the top of the fleet root
      'deploy/fleet/bundles/x/bundle.yaml',
      'deploy/fleet/clusters/a.yaml',
      'deploy/fleet/notes.txt',
    ]);
    assert.deepEqual(
      whole.rejected.map((r) => r.path),
      ['deploy/link'],
    );
    await assert.rejects(readDirectoryTree(dir, { path: 'deploy/link' }), /symbolic link/);
    await assert.rejects(readDirectoryTree(dir, { path: 'deploy/file' }), /not a directory/);
    await assert.rejects(readDirectoryTree(dir, { path: 'nope' }), /"nope" does not exist/);
  });
});
