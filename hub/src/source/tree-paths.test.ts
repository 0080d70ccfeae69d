// Hostile Git trees: every path is checked by the hub itself, and a commit holding an
// unsafe entry is refused with an error naming the path, before any file is read.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import git from 'isomorphic-git';
import { ValidationError } from '@flotilla/common';
import { readCommitTree } from './git-tree.js';
import { checkTreePath, treeNameProblem, treePathProblem } from './tree-paths.js';

describe('treePathProblem', () => {
  const hostile: readonly (readonly [string, RegExp])[] = [
    ['..', /"\.\." component/],
    ['bundles/../../etc/passwd', /"\.\." component/],
    ['bundles/./x.yaml', /"\." component/],
    ['/etc/passwd', /absolute/],
    ['bundles//x.yaml', /empty name/],
    ['', /empty name/],
    ['bundles/.git/config', /"\.git" component/],
    ['bundles/.GIT/hooks/x', /"\.git" component/],
    ['bundles/.git. /x', /"\.git" component/],
    ['bundles/git~1/x', /"\.git" component/],
    ['bundles/.g\u200cit/x', /"\.git" component/],
    ['bundles/.git::$INDEX_ALLOCATION/x', /"\.git" component/],
    ['bundles/.\u200c./x', /"\." or "\.\." component/],
    ['bundles\\..\\..\\x', /backslash/],
    ['bundles/a\u0000b', /control character/],
    ['bundles/a\nb.yaml', /control character/],
    [`bundles/${'a'.repeat(256)}`, /longer than 255 bytes/],
    [`${'a/'.repeat(2100)}x`, /longer than 4096 bytes/],
  ];
  for (const [path, why] of hostile)
    test(`refuses ${JSON.stringify(path.slice(0, 40))}`, () => {
      assert.match(treePathProblem(path) ?? 'accepted', why);
    });

  test('accepts-ordinary-paths', () => {
    for (const path of [
      'bundles/web/bundle.yaml',
      'apps/base/kustomization.yaml',
      '.github/x',
      'bundles/a..b/c...yaml',
      'bundles/.gitignore',
      'bundles/git~x/a:b.yaml',
      'bundles/émoji-🚀.yaml',
    ])
      assert.equal(treePathProblem(path), undefined, path);
    assert.equal(treeNameProblem('.gitkeep'), undefined);
  });

  test('checkTreePath-names-the-path-escaped', () => {
    assert.throws(
      () => checkTreePath('bundles/a\nb/../x'),
      (err: unknown) =>
        err instanceof ValidationError &&
        err.message.includes('"bundles/a\\nb/../x"') &&
        !err.message.includes('\n'),
    );
  });
});

// Builds tree objects byte by byte, as an attacker's Git would: the library's own tree
// writer refuses such names, a hostile server does not.
function rawTree(entries: readonly { mode: string; name: string; oid: string }[]): Buffer {
  return Buffer.concat(
    entries.map((e) =>
      Buffer.concat([Buffer.from(`${e.mode} ${e.name}\0`, 'utf8'), Buffer.from(e.oid, 'hex')]),
    ),
  );
}

describe('readCommitTree on hostile trees', () => {
  let gitdir: string;
  before(async () => {
    gitdir = await mkdtemp(join(tmpdir(), 'flotilla-hostile-tree-'));
    await git.init({ fs, gitdir, bare: true });
  });
  after(async () => rm(gitdir, { recursive: true, force: true }));

  async function commitWith(badName: string): Promise<string> {
    const blob = await git.writeBlob({ fs, gitdir, blob: Buffer.from('kind: ConfigMap\n') });
    const put = (entries: { mode: string; name: string; oid: string }[]): Promise<string> =>
      git.writeObject({ fs, gitdir, type: 'tree', format: 'content', object: rawTree(entries) });
    const web = await put([
      { mode: '100644', name: 'bundle.yaml', oid: blob },
      { mode: '100644', name: badName, oid: blob },
    ]);
    const bundles = await put([{ mode: '40000', name: 'web', oid: web }]);
    const root = await put([{ mode: '40000', name: 'bundles', oid: bundles }]);
    const author = { name: 'Fleet', email: 'fleet@example.com', timestamp: 1, timezoneOffset: 0 };
    return git.writeCommit({
      fs,
      gitdir,
      commit: { tree: root, parent: [], author, committer: author, message: 'hostile\n' },
    });
  }

  for (const [name, why] of [
    ['evil\nname.yaml', /control character/],
    ['..', /"\.\."|Git refuses/],
    ['.git', /"\.git"|Git refuses/],
    ['.Git ', /"\.git"|Git refuses/],
    ['a\\..\\..\\x.yaml', /backslash|Git refuses/],
    ['a'.repeat(256), /longer than 255/],
  ] as const)
    test(`refuses-the-commit-naming-${JSON.stringify(name.slice(0, 12))}`, async () => {
      const commit = await commitWith(name);
      await assert.rejects(readCommitTree({ gitdir, commit, cache: {} }), (err: unknown) => {
        assert.ok(err instanceof ValidationError, String(err));
        assert.match(err.message, /unsafe tree entry "bundles\/web\//);
        assert.match(err.message, why);
        return true;
      });
    });

  test('a-safe-commit-still-reads', async () => {
    const commit = await commitWith('ok.yaml');
    const tree = await readCommitTree({ gitdir, commit, cache: {} });
    assert.deepEqual(tree.paths(), ['bundles/web/bundle.yaml', 'bundles/web/ok.yaml']);
  });
});
