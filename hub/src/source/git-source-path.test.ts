import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, silentLogger } from '@flotilla/common';
import { createWorkRepo, requireEnv, startGitServer } from '@flotilla/test-env';
import type { TestGitServer, WorkRepo } from '@flotilla/test-env';
import { GitSource } from './git-source.js';

const skip = await requireEnv(['git']);

describe('GitSource with a fleet path', { skip }, () => {
  let server: TestGitServer;
  let url: string;
  let work: WorkRepo;
  let cacheDir: string;

  before(async () => {
    server = await startGitServer();
    url = await server.createRepo('mono');
    work = await createWorkRepo(url);
    cacheDir = await mkdtemp(join(tmpdir(), 'flotilla-cache-'));
  });
  after(async () => {
    await work.dispose();
    await server.stop();
    await rm(cacheDir, { recursive: true, force: true });
  });

  test('snapshots-hold-the-subtree-and-every-commit-is-handed-out', async () => {
    const first = await work.commitAndPush('first', {
      'clusters/root.yaml': 'not under the path\n',
      'ops/fleet/clusters/a.yaml': 'a\n',
      'app/main.go': 'v1\n',
    });
    const src = new GitSource({
      name: 'mono',
      url,
      path: 'ops/fleet',
      cacheDir,
      logger: silentLogger(),
    });
    const seen: string[] = [];
    src.onSnapshot((s) => void seen.push(s.revision));
    const snap = await src.poll();
    assert.equal(snap?.revision, first);
    assert.deepEqual((await snap!.readTree()).paths(), ['clusters/a.yaml']);

    // Only files outside the path change: the commit is handed out with the same subtree
    // (the desired revision follows the branch; the rendering's digests stay the same).
    const outside = await work.commitAndPush('outside', {
      'app/main.go': 'v2\n',
      'clusters/root.yaml': 'x\n',
    });
    const same = await src.poll();
    assert.equal(same?.revision, outside);
    assert.deepEqual((await same!.readTree()).paths(), ['clusters/a.yaml']);
    assert.deepEqual(seen, [first, outside]);

    const inside = await work.commitAndPush('inside', { 'ops/fleet/clusters/b.yaml': 'b\n' });
    assert.equal((await src.poll())?.revision, inside);
    assert.deepEqual(seen, [first, outside, inside]);

    const gone = await work.commitAndPush('gone', {
      'ops/fleet/clusters/a.yaml': null,
      'ops/fleet/clusters/b.yaml': null,
    });
    assert.equal((await src.poll())?.revision, inside, 'the last good snapshot stays');
    const st = src.status();
    assert.equal(st.lastErrorCode, 'NOT_FOUND');
    assert.match(
      st.lastError ?? '',
      new RegExp(`fleet path "ops/fleet" does not exist at commit ${gone}`),
    );
    assert.equal(st.lastFetchedRevision, inside);
    assert.deepEqual(seen, [first, outside, inside]);
  });

  test('a-bad-path-or-jitter-is-a-config-error-naming-the-field', () => {
    const make = (over: { path?: string; jitter?: number }): unknown =>
      new GitSource({
        name: 'mono',
        url,
        cacheDir,
        logger: silentLogger(),
        ...over,
      });
    assert.throws(
      () => make({ path: '../up' }),
      (e: unknown) => e instanceof ConfigError && e.field === 'sources.mono.path',
    );
    assert.throws(
      () => make({ jitter: 2 }),
      (e: unknown) => e instanceof ConfigError && e.field === 'sources.mono.pollJitter',
    );
  });
});
