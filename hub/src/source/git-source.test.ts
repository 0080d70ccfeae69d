import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '@flotilla/common';
import { createWorkRepo, requireEnv, startGitServer } from '@flotilla/test-env';
import type { TestGitServer, WorkRepo } from '@flotilla/test-env';
import { GitSource } from './git-source.js';
import type { GitSourceOptions, SourceSnapshot } from './git-source.js';

const AUTH = { username: 'fleet', password: 's3cret' };
const skip = await requireEnv(['git']);

describe('GitSource against git http-backend', { skip }, () => {
  let server: TestGitServer;
  let url: string;
  let work: WorkRepo;
  let cacheDir: string;
  let first: string;

  before(async () => {
    server = await startGitServer({ auth: AUTH });
    url = await server.createRepo('fleet');
    work = await createWorkRepo(url, { auth: AUTH });
    first = await work.commitAndPush('first', {
      'clusters/a.yaml': 'kind: Cluster\n',
      'README.md': 'read: Kustomize bases may live anywhere\n',
      '.github/ci.yaml': 'hidden: not read\n',
    });
    cacheDir = await mkdtemp(join(tmpdir(), 'flotilla-cache-'));
  });
  after(async () => {
    await work.dispose();
    await server.stop();
    await rm(cacheDir, { recursive: true, force: true });
  });

  const source = (over: Partial<GitSourceOptions> = {}): GitSource =>
    new GitSource({
      name: 'fleet',
      url,
      cacheDir,
      auth: AUTH,
      logger: silentLogger(),
      ...over,
    });

  test('clone-emits-a-snapshot-of-the-branch-head-with-its-files', async () => {
    const src = source();
    const seen: SourceSnapshot[] = [];
    src.onSnapshot((s) => void seen.push(s));
    const snap = await src.poll();
    assert.equal(snap?.revision, first);
    assert.deepEqual(
      seen.map((s) => s.revision),
      [first],
    );
    const tree = await seen[0]!.readTree();
    assert.deepEqual(tree.paths(), ['README.md', 'clusters/a.yaml']);
    assert.equal(tree.read('clusters/a.yaml')?.toString(), 'kind: Cluster\n');
    assert.equal(src.status().lastFetchedRevision, first);
    assert.equal(src.status().lastError, undefined);
  });

  test('a-second-commit-is-picked-up-by-fetch-and-an-unchanged-head-emits-nothing', async () => {
    const src = source();
    const seen: string[] = [];
    src.onSnapshot((s) => void seen.push(s.revision));
    await src.poll(); // reuses the clone from the previous test: fetch path
    const second = await work.commitAndPush('second', {
      'bundles/x/bundle.yaml': 'kind: Bundle\n',
    });
    const snap = await src.poll();
    await src.poll();
    assert.equal(snap?.revision, second);
    assert.deepEqual(seen, [first, second]);
    assert.deepEqual((await snap!.readTree()).paths(), [
      'README.md',
      'bundles/x/bundle.yaml',
      'clusters/a.yaml',
    ]);
  });

  test('poll-loop-picks-up-a-push-after-triggerNow', async () => {
    const src = source({ pollIntervalMs: 60_000 });
    let resolveNext: (rev: string) => void = () => undefined;
    let next = new Promise<string>((r) => (resolveNext = r));
    src.onSnapshot((s) => resolveNext(s.revision));
    src.start();
    await next;
    next = new Promise<string>((r) => (resolveNext = r));
    const third = await work.commitAndPush('third', { 'clusters/b.yaml': 'kind: Cluster\n' });
    src.triggerNow();
    assert.equal(await next, third);
    await src.stop();
  });

  test('missing-branch-is-reported-in-status-with-the-source-name', async () => {
    const src = source({ name: 'wrongbranch', branch: 'nope' });
    assert.equal(await src.poll(), undefined);
    const st = src.status();
    assert.equal(st.lastErrorCode, 'NOT_FOUND');
    assert.match(st.lastError ?? '', /wrongbranch.*branch "nope" not found/);
    assert.equal(st.consecutiveFailures, 1);
  });

  test('bad-credentials-are-an-authentication-error-and-never-appear-in-status', async () => {
    const src = source({
      name: 'badauth',
      auth: { username: 'fleet', password: 'wrong-password' },
    });
    await src.poll();
    const st = src.status();
    assert.equal(st.lastErrorCode, 'UNAUTHENTICATED');
    assert.match(st.lastError ?? '', /authentication failed \(HTTP 401\)/);
    assert.doesNotMatch(JSON.stringify(st), /wrong-password/);
  });

  test('missing-credentials-against-a-protected-server-are-an-authentication-error', async () => {
    const src = source({ name: 'noauth', auth: undefined });
    await src.poll();
    assert.equal(src.status().lastErrorCode, 'UNAUTHENTICATED');
  });

  test('unreachable-server-is-reported-as-unavailable', async () => {
    const src = source({ name: 'down', url: 'http://127.0.0.1:1/fleet.git' });
    await src.poll();
    assert.equal(src.status().lastErrorCode, 'UNAVAILABLE');
  });

  test('a-server-that-never-answers-times-out-as-unavailable', async () => {
    const hung = createServer(() => undefined);
    await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
    const { port } = hung.address() as AddressInfo;
    const src = source({
      name: 'hung',
      url: `http://127.0.0.1:${port}/fleet.git`,
      requestTimeoutMs: 200,
    });
    // Without the request timeout this poll would wait for the server forever.
    await src.poll();
    hung.closeAllConnections();
    hung.close();
    assert.equal(src.status().lastErrorCode, 'UNAVAILABLE');
    assert.match(
      src.status().lastError ?? '',
      /source "hung" .* is unavailable: Request timed out/,
    );
  });

  test('a-branch-that-appears-later-clears-the-error-on-the-next-poll', async () => {
    const src = source({ name: 'later', branch: 'later' });
    await src.poll();
    assert.equal(src.status().lastErrorCode, 'NOT_FOUND');
    const other = await createWorkRepo(url, { auth: AUTH, branch: 'later' });
    const rev = await other.commitAndPush('later', { 'clusters/c.yaml': 'kind: Cluster\n' });
    await other.dispose();
    assert.equal((await src.poll())?.revision, rev);
    assert.equal(src.status().lastError, undefined);
    assert.equal(src.status().consecutiveFailures, 0);
  });

  test('an-incremental-read-after-adds-edits-and-deletes-equals-a-fresh-read', async () => {
    const src = source({ name: 'incremental' });
    await (await src.poll())!.readTree();
    await work.commitAndPush('edit', {
      'bundles/x/bundle.yaml': 'kind: Bundle\n# edited\n',
      'bundles/y/m/a.yaml': 'a\n',
      'clusters/b.yaml': null,
    });
    const snap = await src.poll();
    const incremental = await snap!.readTree();
    const fresh = await source({ name: 'fresh' })
      .poll()
      .then((s) => s!.readTree());
    assert.deepEqual(incremental.paths(), fresh.paths());
    for (const p of fresh.paths())
      assert.equal(incremental.read(p)?.toString(), fresh.read(p)?.toString(), p);
    assert.ok(!incremental.paths().includes('clusters/b.yaml'));
    assert.equal(incremental.read('bundles/x/bundle.yaml')?.toString(), 'kind: Bundle\n# edited\n');
  });

  test('credentials-never-reach-the-log', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write: (chunk: Buffer, _enc, cb) => (lines.push(chunk.toString()), cb()),
    });
    const logger = createLogger({ name: 'test', level: 'debug', destination });
    await source({ name: 'logged', logger }).poll();
    await source({ name: 'logged2', logger, auth: { token: 'tok-very-secret' } }).poll();
    assert.ok(lines.length >= 2);
    assert.doesNotMatch(lines.join(''), /s3cret|tok-very-secret|ZmxlZXQ6czNjcmV0/);
  });
});
