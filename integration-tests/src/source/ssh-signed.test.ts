// Commits signed by the real git CLI with SSH keys (gpg.format=ssh, which runs
// `ssh-keygen -Y sign -n git`), served by a real `git http-backend`, checked by a hub
// source built from hub config that trusts an OpenSSH allowed_signers file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '@flotilla/common';
import { compileHubConfig, createGitSource } from '@flotilla/hub';
import type { GitSource } from '@flotilla/hub';
import {
  createWorkRepo,
  requireEnv,
  requirePrerequisite,
  runGit,
  startGitServer,
} from '@flotilla/test-env';
import type { WorkRepo } from '@flotilla/test-env';

const run = promisify(execFile);
const skip =
  (await requireEnv(['git'])) ??
  (await requirePrerequisite(
    'ssh-keygen',
    async () => {
      // `-l` on an empty file fails, but only a missing program rejects with ENOENT.
      await run('ssh-keygen', ['-l', '-f', '/dev/null']).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') throw err;
      });
    },
    'apt-get install openssh-client',
  ));

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('SSH-signed commits through a hub source', { skip, timeout: 60_000 }, () => {
  let home: string;
  let work: WorkRepo;
  let source: GitSource;
  let allowedSigners: string;
  const logLines: string[] = [];
  const key = (name: string): string => join(home, name);

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'flotilla-ssh-signed-'));
    cleanups.push(() => rm(home, { recursive: true, force: true }));
    for (const [name, type] of [
      ['release', 'ed25519'],
      ['ops', 'ecdsa'],
      ['stranger', 'ed25519'],
    ] as const)
      await run('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', name, '-f', key(name)]);
    // What the docs tell an operator to run, one line per trusted key.
    const line = async (who: string, name: string): Promise<string> =>
      `${who} namespaces="git" ${(await readFile(`${key(name)}.pub`, 'utf8')).trim()}\n`;
    allowedSigners = key('allowed_signers');
    await writeFile(
      allowedSigners,
      `# release managers\n${await line('release@example.com', 'release')}${await line('"ops@example.com,oncall@example.com"', 'ops')}`,
    );

    const git = await startGitServer();
    cleanups.push(() => git.stop());
    const url = await git.createRepo('ssh-signed');
    work = await createWorkRepo(url);
    cleanups.push(() => work.dispose());
    const cacheDir = await mkdtemp(join(tmpdir(), 'flotilla-ssh-signed-cache-'));
    cleanups.push(() => rm(cacheDir, { recursive: true, force: true }));

    const cfg = compileHubConfig(
      {
        sources: [
          {
            name: 'fleet',
            url,
            pollInterval: '1h',
            verify: { sshAllowedSigners: [allowedSigners] },
          },
        ],
      },
      'hub.yaml',
      { defaultCacheDir: cacheDir },
    );
    const out = new PassThrough();
    out.on('data', (chunk: Buffer) => logLines.push(...chunk.toString().split('\n')));
    source = await createGitSource(cfg, 0, createLogger({ name: 'hub', destination: out }));
  });

  /** Commits a change signed with `signer`'s SSH key (as `git commit -S` with gpg.format=ssh) and pushes it. */
  const commitAs = async (signer: string, msg: string): Promise<string> => {
    await work.writeFiles({ 'clusters/a.yaml': `# ${msg}\nkind: Cluster\n` });
    await runGit(['add', '--all'], work.dir);
    await runGit(
      [
        ...['-c', 'gpg.format=ssh', '-c', `user.signingkey=${key(signer)}`],
        ...['commit', '-S', '--quiet', '-m', msg],
      ],
      work.dir,
    );
    await runGit(['push', '--quiet', 'origin', 'HEAD:refs/heads/main'], work.dir);
    return work.head();
  };

  test('commits-signed-with-trusted-ssh-keys-are-served-and-an-untrusted-one-is-refused', async () => {
    const seen: string[] = [];
    source.onSnapshot((s) => void seen.push(s.revision));

    const good = await commitAs('release', 'signed by the release manager');
    // git itself accepts the same allowed_signers file for this commit.
    await runGit(
      ['-c', `gpg.ssh.allowedSignersFile=${allowedSigners}`, 'verify-commit', good],
      work.dir,
    );
    const snapshot = await source.poll();
    assert.equal(snapshot?.revision, good, source.status().lastError);
    const tree = await snapshot.readTree();
    assert.match(tree.read('clusters/a.yaml')?.toString() ?? '', /signed by the release manager/);

    const foreign = await commitAs('stranger', 'signed by a stranger');
    assert.equal((await source.poll())?.revision, good, 'the last trusted commit stays current');
    const st = source.status();
    assert.equal(st.rejectedRevision, foreign);
    assert.equal(st.lastFetchedRevision, good);
    const fp = (await run('ssh-keygen', ['-l', '-f', `${key('stranger')}.pub`])).stdout.split(
      ' ',
    )[1];
    assert.equal(
      st.lastError,
      `commit ${foreign} is not trusted: it is signed by SSH key ${fp}, which is not trusted`,
    );

    const ecdsa = await commitAs('ops', 'signed by on-call');
    assert.equal((await source.poll())?.revision, ecdsa, source.status().lastError);
    assert.equal(source.status().rejectedRevision, undefined);
    assert.deepEqual(seen, [good, ecdsa], 'the untrusted commit is never handed to render');

    const verified = logLines
      .filter((l) => l.includes('commit signature verified'))
      .map((l) => JSON.parse(l) as { revision: string; signer: string; source: string });
    assert.deepEqual(
      verified.map((v) => [v.revision, v.signer, v.source]),
      [
        [good, 'release@example.com', 'fleet'],
        [ecdsa, 'ops@example.com,oncall@example.com', 'fleet'],
      ],
    );
  });
});
