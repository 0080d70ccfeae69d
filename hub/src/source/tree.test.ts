import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readDirectoryTree } from './tree.js';

describe('readDirectoryTree', () => {
  let dir: string;
  let outside: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-tree-'));
    outside = await mkdtemp(join(tmpdir(), 'flotilla-outside-'));
    const write = async (p: string, t: string): Promise<void> => {
      await mkdir(dirname(join(dir, p)), { recursive: true });
      await writeFile(join(dir, p), t);
    };
    await write('clusters/a.yaml', 'a');
    await write('bundles/x/manifests/z.yaml', 'z');
    await write('bundles/x/manifests/b.yaml', 'b');
    await write('README.md', 'read');
    await write('apps/base/kustomization.yaml', 'resources: []');
    await write('.git/HEAD', 'hidden: not read');
    await writeFile(join(outside, 'secret.yaml'), 'kind: Secret');
    await symlink(join(outside, 'secret.yaml'), join(dir, 'bundles/x/manifests/link.yaml'));
    await symlink(outside, join(dir, 'bundles/escape'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  test('reads-everything-but-hidden-entries-sorted-by-path', async () => {
    const tree = await readDirectoryTree(dir);
    assert.deepEqual(tree.paths(), [
      'README.md',
      'apps/base/kustomization.yaml',
      'bundles/x/manifests/b.yaml',
      'bundles/x/manifests/z.yaml',
      'clusters/a.yaml',
    ]);
    assert.equal(tree.read('clusters/a.yaml')?.toString(), 'a');
  });

  test('symlinks-are-rejected-and-never-followed-out-of-the-repo', async () => {
    const tree = await readDirectoryTree(dir);
    assert.deepEqual(tree.rejected.map((r) => r.path).sort(), [
      'bundles/escape',
      'bundles/x/manifests/link.yaml',
    ]);
    assert.ok(!tree.paths().some((p) => p.includes('secret') || p.startsWith('bundles/escape')));
    assert.match(tree.rejected[0]?.reason ?? '', /symbolic links are not allowed/);
  });
});
