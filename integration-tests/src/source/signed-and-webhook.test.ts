// Signed commits made by the real git CLI + gpg, verified by the hub; and a push webhook
// posted to the hub's real HTTP API making a source fetch at once.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { silentLogger } from '@flotilla/common';
import {
  CommitVerifier,
  FleetStatus,
  GitSource,
  WebhookHandler,
  startHttpApi,
} from '@flotilla/hub';
import {
  createWorkRepo,
  requireEnv,
  requirePrerequisite,
  runGit,
  startGitServer,
  waitFor,
} from '@flotilla/test-env';
import type { TestGitServer, WorkRepo } from '@flotilla/test-env';

const run = promisify(execFile);
const skip =
  (await requireEnv(['git'])) ??
  (await requirePrerequisite(
    'gpg',
    async () => (await run('gpg', ['--version'])).stdout.includes('GnuPG'),
    'apt-get install gnupg',
  ));

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** A throw-away GnuPG home with one signing key; returns its fingerprint and armored public key. */
async function gpgKey(home: string, who: string): Promise<{ fpr: string; armored: string }> {
  const gpg = (...args: string[]): Promise<{ stdout: string }> =>
    run('gpg', [
      '--homedir',
      home,
      '--batch',
      '--pinentry-mode',
      'loopback',
      '--passphrase',
      '',
      ...args,
    ]);
  await gpg('--quick-gen-key', `${who} <${who}@flotilla.invalid>`, 'ed25519', 'sign', 'never');
  const listing = (await gpg('--with-colons', '--list-keys', `${who}@flotilla.invalid`)).stdout;
  const fpr = /^fpr:+([0-9A-F]{40}):/m.exec(listing)?.[1];
  assert.ok(fpr, 'gpg printed a fingerprint');
  return { fpr, armored: (await gpg('--armor', '--export', fpr)).stdout };
}

describe('signed commits, verified against trusted keys', { skip, timeout: 60_000 }, () => {
  let git: TestGitServer;
  let url: string;
  let work: WorkRepo;
  let cacheDir: string;
  let trusted: { fpr: string; armored: string };
  let stranger: { fpr: string; armored: string };
  let keyFile: string;

  before(async () => {
    const home = await mkdtemp(join(tmpdir(), 'flotilla-gnupg-'));
    cleanups.push(() => rm(home, { recursive: true, force: true }));
    // runGit passes process.env through: git finds the test keyring there, and gpg its agent.
    process.env.GNUPGHOME = home;
    cleanups.push(() =>
      run('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']).catch(() => undefined),
    );
    trusted = await gpgKey(home, 'release-manager');
    stranger = await gpgKey(home, 'stranger');
    keyFile = join(home, 'trusted.asc');
    await writeFile(keyFile, trusted.armored);
    git = await startGitServer();
    cleanups.push(() => git.stop());
    url = await git.createRepo('signed');
    work = await createWorkRepo(url);
    cleanups.push(() => work.dispose());
    cacheDir = await mkdtemp(join(tmpdir(), 'flotilla-signed-cache-'));
    cleanups.push(() => rm(cacheDir, { recursive: true, force: true }));
  });

  const commitAs = async (signer: string | undefined, msg: string): Promise<string> => {
    await work.writeFiles({ 'clusters/a.yaml': `# ${msg}\nkind: Cluster\n` });
    await runGit(['add', '--all'], work.dir);
    await runGit(
      [
        ...(signer ? ['-c', `user.signingkey=${signer}`, 'commit', '-S'] : ['commit']),
        '--quiet',
        '-m',
        msg,
      ],
      work.dir,
    );
    await runGit(['push', '--quiet', 'origin', 'HEAD:refs/heads/main'], work.dir);
    return work.head();
  };

  test('only-commits-signed-by-a-trusted-key-are-handed-out-and-status-says-why', async () => {
    const verifier = await CommitVerifier.fromFiles([keyFile], 'verify.openpgpKeys');
    const src = new GitSource({ name: 'signed', url, cacheDir, verifier, logger: silentLogger() });
    const seen: string[] = [];
    src.onSnapshot((s) => void seen.push(s.revision));

    const good = await commitAs(trusted.fpr, 'signed by the release manager');
    assert.equal((await src.poll())?.revision, good);

    const unsigned = await commitAs(undefined, 'unsigned');
    assert.equal((await src.poll())?.revision, good, 'the last trusted commit stays current');
    let st = src.status();
    assert.equal(st.rejectedRevision, unsigned);
    assert.equal(st.lastFetchedRevision, good);
    assert.match(
      st.lastError ?? '',
      new RegExp(`commit ${unsigned} is not trusted: it is not signed`),
    );

    const foreign = await commitAs(stranger.fpr, 'signed by a stranger');
    await src.poll();
    st = src.status();
    assert.equal(st.rejectedRevision, foreign);
    assert.match(
      st.lastError ?? '',
      new RegExp(`signed by key ${stranger.fpr.slice(-16)}, which is not trusted`),
    );

    const fixed = await commitAs(trusted.fpr, 'signed again');
    assert.equal((await src.poll())?.revision, fixed);
    assert.equal(src.status().lastError, undefined);
    assert.equal(src.status().rejectedRevision, undefined);
    assert.deepEqual(seen, [good, fixed], 'untrusted commits are never handed to render');
  });

  test('the-key-file-can-hold-several-keys-and-any-of-them-is-trusted', async () => {
    const both = join(cacheDir, 'both.asc');
    await writeFile(both, `${await readFile(keyFile, 'utf8')}\n${stranger.armored}`);
    const verifier = await CommitVerifier.fromFiles([both], 'keys');
    const src = new GitSource({
      name: 'signed-two-keys',
      url,
      cacheDir,
      verifier,
      logger: silentLogger(),
    });
    const head = await commitAs(stranger.fpr, 'stranger is now trusted');
    assert.equal((await src.poll())?.revision, head, src.status().lastError);
  });
});

describe('push webhooks through the hub HTTP API', { skip, timeout: 60_000 }, () => {
  test('a-signed-github-push-makes-the-source-fetch-at-once-and-a-bad-signature-does-not', async () => {
    const git = await startGitServer();
    cleanups.push(() => git.stop());
    const url = await git.createRepo('hooked');
    const work = await createWorkRepo(url);
    cleanups.push(() => work.dispose());
    const cacheDir = await mkdtemp(join(tmpdir(), 'flotilla-hook-cache-'));
    cleanups.push(() => rm(cacheDir, { recursive: true, force: true }));
    await work.writeFiles({ 'clusters/a.yaml': 'kind: Cluster\n' });
    const first = await work.commitAndPush('first');

    const secret = 'webhook-shared-secret';
    // An hour between polls: only the webhook can explain a prompt fetch.
    const src = new GitSource({
      name: 'hooked',
      url,
      cacheDir,
      pollIntervalMs: 3_600_000,
      jitter: 0,
      webhookSecret: secret,
      logger: silentLogger(),
    });
    const revisions: string[] = [];
    src.onSnapshot((s) => void revisions.push(s.revision));
    const logger = silentLogger();
    const api = await startHttpApi('127.0.0.1', 0, {
      status: new FleetStatus({ offlineAfterMs: 45_000, logger }),
      sources: { sources: () => [] },
      readiness: { check: () => ({ ready: true, reasons: [] }) },
      logger,
      webhooks: new WebhookHandler((name) => (name === 'hooked' ? src.webhook : undefined), logger),
    });
    cleanups.push(() => api.stop());
    src.start();
    cleanups.push(() => src.stop());
    await waitFor(() => revisions.includes(first), { what: 'the first poll' });

    await work.writeFiles({ 'clusters/b.yaml': 'kind: Cluster\n' });
    const second = await work.commitAndPush('second');
    const body = JSON.stringify({
      ref: 'refs/heads/main',
      after: second,
      repository: { clone_url: url, html_url: url },
    });
    const post = (signature: string): Promise<Response> =>
      fetch(`http://127.0.0.1:${api.port}/api/v1/webhooks/hooked`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-github-event': 'push',
          'x-hub-signature-256': signature,
        },
        body,
      });

    const forged = await post(
      `sha256=${createHmac('sha256', 'guessed').update(body).digest('hex')}`,
    );
    assert.equal(forged.status, 401);
    assert.equal(
      ((await forged.json()) as { error: { code: string } }).error.code,
      'UNAUTHENTICATED',
    );
    const ok = await post(`sha256=${createHmac('sha256', secret).update(body).digest('hex')}`);
    assert.equal(ok.status, 202);
    assert.deepEqual(await ok.json(), {
      triggered: true,
      source: 'hooked',
      ref: 'refs/heads/main',
    });
    await waitFor(() => revisions.includes(second), { what: 'the fetch triggered by the webhook' });
    assert.equal(src.status().lastFetchedRevision, second);

    const unknown = await fetch(`http://127.0.0.1:${api.port}/api/v1/webhooks/nosuch`, {
      method: 'POST',
      body: '{}',
    });
    assert.equal(unknown.status, 404);
  });
});
