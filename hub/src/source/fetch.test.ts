import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import http from 'isomorphic-git/http/node';
import { silentLogger } from '@flotilla/common';
import { createWorkRepo, requireEnv, startGitServer } from '@flotilla/test-env';
import type { TestGitServer, WorkRepo } from '@flotilla/test-env';
import { RepoCache } from './fetch.js';

const skip = await requireEnv(['git']);
let server: TestGitServer;
let url: string;
let work: WorkRepo;
let dir: string;
before(async () => {
  if (skip) return;
  server = await startGitServer();
  url = await server.createRepo('fleet');
  work = await createWorkRepo(url);
  dir = await mkdtemp(join(tmpdir(), 'flotilla-fetch-'));
});
after(async () => {
  if (skip) return;
  await work.dispose();
  await server.stop();
  await rm(dir, { recursive: true, force: true });
});

const packFiles = async (): Promise<string[]> =>
  (await readdir(join(dir, '.git/objects/pack'))).filter((n) => n.endsWith('.pack'));
const packs = async (): Promise<number> => (await packFiles()).length;
const packBytes = async (name: string): Promise<number> =>
  (await stat(join(dir, '.git/objects/pack', name))).size;

test(
  'fetches-after-the-first-transfer-only-what-changed-and-the-cache-starts-over-past-its-pack-limit',
  { skip },
  async () => {
    const big: Record<string, string> = {};
    // Incompressible content, so the full pack's size reflects the number of files.
    for (let i = 0; i < 300; i++)
      big[`bundles/b/m/f${i}.yaml`] = `k: ${randomBytes(750).toString('base64')}\n`;
    await work.commitAndPush('big', big);
    const repo = new RepoCache({
      dir,
      url,
      http,
      headers: {},
      log: silentLogger(),
      maxPacks: 3,
    });
    const ref = { kind: 'branch', name: 'main' } as const;
    await repo.fetch(ref);
    const [first] = await packFiles();
    const firstBytes = await packBytes(first as string);
    const sizes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const sha = await work.commitAndPush('change', { 'bundles/b/m/f1.yaml': `changed ${i}\n` });
      const before = await packs();
      const got = await repo.fetch(ref);
      assert.equal(got.commit, sha);
      assert.equal(got.transferred, true);
      sizes.push((await packs()) - before);
    }
    // Packs 2, 3, 4 are added; the fourth fetch finds 4 > 3 and starts over with one pack.
    assert.deepEqual(sizes, [1, 1, 1, -3]);
    // Before the restart, every incremental pack was a small fraction of the full one.
    await work.commitAndPush('change', { 'bundles/b/m/f2.yaml': 'changed\n' });
    const known = new Set(await packFiles());
    await repo.fetch(ref);
    const added = (await packFiles()).filter((n) => !known.has(n));
    assert.equal(added.length, 1);
    const addedBytes = await packBytes(added[0] as string);
    assert.ok(
      addedBytes * 10 < firstBytes,
      `incremental pack ${addedBytes} B vs full ${firstBytes} B`,
    );
    const again = await repo.fetch(ref);
    assert.equal(again.transferred, false, 'an unchanged ref fetches nothing');
  },
);
