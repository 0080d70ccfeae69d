import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLocalRepo, createWorkRepo, requireEnv, runGit, startGitServer } from './index.js';

const skip = await requireEnv(['git']);
const cleanups: (() => Promise<void>)[] = [];
after(() => Promise.all(cleanups.map((c) => c())));

const files = async (dir: string, rev: string): Promise<string[]> =>
  (await runGit(['ls-tree', '-r', '--name-only', rev], dir)).trim().split('\n');

test(
  'a-local-repo-commits-writes-and-deletes-and-resolves-each-sha',
  { skip, timeout: 60_000 },
  async () => {
    const repo = await createLocalRepo({ branch: 'trunk' });
    cleanups.push(() => repo.dispose());
    const first = await repo.commit('first', {
      'a/x.yaml': 'x\n',
      'a/y.yaml': 'y\n',
      'b.txt': 'b\n',
    });
    const second = await repo.commit('second', { a: null, 'c/d.txt': 'd\n' });
    assert.equal(await repo.head(), second);
    assert.equal((await runGit(['rev-parse', `${second}~1`], repo.dir)).trim(), first);
    assert.equal((await runGit(['branch', '--show-current'], repo.dir)).trim(), 'trunk');
    assert.deepEqual(await files(repo.dir, first), ['a/x.yaml', 'a/y.yaml', 'b.txt']);
    assert.deepEqual(await files(repo.dir, second), ['b.txt', 'c/d.txt']);
    assert.equal(await readFile(join(repo.dir, 'c/d.txt'), 'utf8'), 'd\n');
    const empty = await repo.commit('nothing changed');
    assert.notEqual(empty, second, 'an empty commit is still a commit');
    await assert.rejects(repo.push(), /git push/, 'a local repo has no remote');
  },
);

test(
  'commit-and-push-with-files-reaches-the-server-on-the-chosen-branch',
  { skip, timeout: 60_000 },
  async () => {
    const git = await startGitServer();
    cleanups.push(git.stop);
    const url = await git.createRepo('fleet');
    const work = await createWorkRepo(url, { branch: 'release' });
    cleanups.push(() => work.dispose());
    const sha = await work.commitAndPush('add', { 'clusters/a.yaml': 'a\n' });
    const heads = await runGit(['ls-remote', '--heads', url]);
    assert.equal(heads.trim(), `${sha}\trefs/heads/release`);
  },
);
