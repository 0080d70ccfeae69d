// Git sources against the real smart-HTTP server: what a source follows (branch, tag,
// exact commit, semver tag range), force-pushes, credentials, and several sources in
// one hub each with its own status.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createLogger, silentLogger } from '@flotilla/common';
import { GitSource, compileHubConfig, createGitSource } from '@flotilla/hub';
import type { GitSourceOptions, SourceRef } from '@flotilla/hub';
import { createWorkRepo, requireEnv, runGit, startGitServer } from '@flotilla/test-env';
import type { TestGitServer, WorkRepo } from '@flotilla/test-env';

const skip = await requireEnv(['git']);
const AUTH = { username: 'fleet', password: 'pa55-w0rd-never-logged' };

describe('git sources on a real Git server', { skip, timeout: 60_000 }, () => {
  let git: TestGitServer;
  let url: string;
  let work: WorkRepo;
  let cacheDir: string;

  before(async () => {
    git = await startGitServer({ auth: AUTH });
    url = await git.createRepo('fleet');
    work = await createWorkRepo(url, { auth: AUTH });
    cacheDir = await mkdtemp(join(tmpdir(), 'flotilla-src-cache-'));
  });
  after(async () => {
    await work?.dispose();
    await git?.stop();
    await rm(cacheDir, { recursive: true, force: true });
  });

  let n = 0;
  const source = (ref: SourceRef, over: Partial<GitSourceOptions> = {}): GitSource =>
    new GitSource({
      name: `src-${++n}`,
      url,
      ref,
      cacheDir,
      auth: AUTH,
      logger: silentLogger(),
      ...over,
    });
  const commit = async (msg: string): Promise<string> => {
    await work.writeFiles({ 'clusters/a.yaml': `# ${msg}\nkind: Cluster\n` });
    return work.commitAndPush(msg);
  };
  const tag = async (name: string, annotated = false): Promise<void> => {
    await runGit(annotated ? ['tag', '-a', '-m', name, name] : ['tag', name], work.dir);
    await runGit(['push', '--quiet', 'origin', `refs/tags/${name}`], work.dir);
  };

  test('a-semver-range-follows-the-highest-matching-tag-as-tags-are-pushed', async () => {
    const c120 = await commit('1.2.0');
    await tag('v1.2.0');
    const c135 = await commit('1.3.5');
    await tag('v1.3.5', true); // annotated: resolved to its commit
    const c200 = await commit('2.0.0');
    await tag('v2.0.0');
    const patch = source({ kind: 'semver', range: 'v1.2.x' });
    const caret = source({ kind: 'semver', range: '^1.2.0' });
    const between = source({ kind: 'semver', range: '>=1.0.0 <3.0.0' });
    assert.equal((await patch.poll())?.revision, c120);
    assert.equal((await caret.poll())?.revision, c135);
    assert.equal((await between.poll())?.revision, c200);
    assert.equal(caret.status().ref, 'tag v1.3.5 (semver ^1.2.0)');
    const c129 = await commit('1.2.9');
    await tag('v1.2.9');
    assert.equal((await patch.poll())?.revision, c129);
    assert.equal((await caret.poll())?.revision, c135, 'a lower tag does not move ^1.2.0');
    const tree = await (await patch.poll())!.readTree();
    assert.match(tree.read('clusters/a.yaml')?.toString() ?? '', /# 1\.2\.9/);
    const none = source({ kind: 'semver', range: '^7' });
    assert.equal(await none.poll(), undefined);
    assert.equal(none.status().lastErrorCode, 'NOT_FOUND');
    assert.match(none.status().lastError ?? '', /no tag matches semver range "\^7"/);
  });

  test('a-tag-and-an-exact-commit-stay-where-they-point-while-the-branch-moves', async () => {
    const pinned = await commit('pinned');
    await tag('release-1', true);
    const byTag = source({ kind: 'tag', name: 'release-1' });
    const byCommit = source({ kind: 'commit', sha: pinned });
    const byBranch = source({ kind: 'branch', name: 'main' });
    assert.equal((await byTag.poll())?.revision, pinned);
    const later = await commit('later');
    assert.equal((await byBranch.poll())?.revision, later);
    assert.equal((await byTag.poll())?.revision, pinned);
    // No ref points at `pinned` any more than a tag: a plain git server refuses an
    // unadvertised SHA, so this exercises the history fallback too.
    const old = await commit('older-than-head');
    await commit('head');
    const byOldCommit = source({ kind: 'commit', sha: old });
    assert.equal((await byCommit.poll())?.revision, pinned);
    assert.equal((await byOldCommit.poll())?.revision, old);
    assert.match(
      (await (await byOldCommit.poll())!.readTree()).read('clusters/a.yaml')?.toString() ?? '',
      /older-than-head/,
    );
    const missing = source({ kind: 'commit', sha: 'f'.repeat(40) });
    assert.equal(await missing.poll(), undefined);
    assert.match(missing.status().lastError ?? '', /commit f{40} not found/);
  });

  test('a-force-push-that-rewrites-history-is-fetched-without-a-crash', async () => {
    const src = source({ kind: 'branch', name: 'main' });
    const before = await commit('before-rewrite');
    assert.equal((await src.poll())?.revision, before);
    await runGit(['reset', '--quiet', '--hard', 'HEAD~2'], work.dir);
    await work.writeFiles({ 'clusters/a.yaml': 'kind: Cluster\n# rewritten\n' });
    await runGit(['add', '-A'], work.dir);
    await runGit(['commit', '--quiet', '-m', 'rewritten'], work.dir);
    await runGit(['push', '--quiet', '--force', 'origin', 'HEAD:refs/heads/main'], work.dir);
    const rewritten = await work.head();
    const snap = await src.poll();
    assert.equal(snap?.revision, rewritten);
    assert.equal(src.status().lastError, undefined);
    assert.match((await snap!.readTree()).read('clusters/a.yaml')?.toString() ?? '', /# rewritten/);
    // Back to the old head (a revert by force-push): it is already cached, and still handed out.
    await runGit(['push', '--quiet', '--force', 'origin', `${before}:refs/heads/main`], work.dir);
    assert.equal((await src.poll())?.revision, before);
    await runGit(['reset', '--quiet', '--hard', before], work.dir); // later tests build on the server's main
  });

  test('credentials-from-env-work-bad-ones-fail-and-neither-reaches-logs-or-status', async () => {
    const lines: string[] = [];
    const logger = createLogger({
      name: 't',
      level: 'debug',
      destination: new Writable({ write: (c: Buffer, _e, cb) => (lines.push(c.toString()), cb()) }),
    });
    const raw = {
      sources: [
        {
          name: 'good',
          url,
          branch: 'main',
          auth: { usernameEnv: 'GIT_USER', passwordEnv: 'GIT_PASS' },
        },
        {
          name: 'bad',
          url,
          branch: 'main',
          auth: { usernameEnv: 'GIT_USER', passwordEnv: 'GIT_BAD' },
        },
      ],
    };
    const cfg = compileHubConfig(raw, 'hub.yaml', { defaultCacheDir: cacheDir });
    const env = { GIT_USER: AUTH.username, GIT_PASS: AUTH.password, GIT_BAD: 'wrong-secret-value' };
    const good = await createGitSource(cfg, 0, logger, env);
    const bad = await createGitSource(cfg, 1, logger, env);
    const head = await work.head();
    assert.equal((await good.poll())?.revision, head);
    assert.equal(await bad.poll(), undefined);
    assert.equal(bad.status().lastErrorCode, 'UNAUTHENTICATED');
    assert.match(bad.status().lastError ?? '', /source "bad" .*authentication failed \(HTTP 401\)/);
    const everything = lines.join('') + JSON.stringify([good.status(), bad.status()]);
    const b64 = (s: string): string => Buffer.from(`${AUTH.username}:${s}`).toString('base64');
    for (const secret of [
      AUTH.password,
      'wrong-secret-value',
      b64(AUTH.password),
      b64('wrong-secret-value'),
    ]) {
      assert.ok(!everything.includes(secret), 'a credential reached the log or status');
    }
  });

  test('two-sources-in-one-hub-keep-separate-caches-and-statuses', async () => {
    const otherUrl = await git.createRepo('platform');
    const other = await createWorkRepo(otherUrl, { auth: AUTH });
    await other.writeFiles({ 'bundles/x/bundle.yaml': 'kind: Bundle\n' });
    const otherHead = await other.commitAndPush('platform');
    await other.dispose();
    const cfg = compileHubConfig(
      {
        sources: [
          { name: 'apps', url, branch: 'main' },
          { name: 'platform', url: otherUrl, tag: 'nope' },
        ],
      },
      'hub.yaml',
      { defaultCacheDir: cacheDir },
    );
    const apps = await createGitSource(cfg, 0, silentLogger(), {});
    const platform = await createGitSource(cfg, 1, silentLogger(), {});
    await Promise.all([apps.poll(), platform.poll()]);
    // No credentials configured: both fail on their own, each says why.
    assert.equal(apps.status().lastErrorCode, 'UNAUTHENTICATED');
    assert.match(platform.status().lastError ?? '', /source "platform"/);
    const withAuth = (name: string, u: string, ref: SourceRef): GitSource =>
      new GitSource({ name, url: u, ref, cacheDir, auth: AUTH, logger: silentLogger() });
    const a = withAuth('apps', url, { kind: 'branch', name: 'main' });
    const p = withAuth('platform', otherUrl, { kind: 'tag', name: 'nope' });
    await Promise.all([a.poll(), p.poll()]);
    assert.equal(a.status().lastFetchedRevision, await work.head());
    assert.ok(a.status().lastFetchAt instanceof Date);
    assert.equal(p.status().lastFetchedRevision, undefined);
    assert.equal(p.status().lastErrorCode, 'NOT_FOUND');
    assert.match(p.status().lastError ?? '', /tag "nope" not found/);
    assert.ok(p.status().lastErrorAt instanceof Date);
    const fixed = withAuth('platform', otherUrl, { kind: 'branch', name: 'main' });
    assert.equal((await fixed.poll())?.revision, otherHead);
  });
});
