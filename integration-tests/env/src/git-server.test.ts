import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import {
  CommandFailedError,
  createWorkRepo,
  requireEnv,
  runGit,
  startGitServer,
  withCredentials,
} from './index.js';

const skip = await requireEnv(['git']);
const cleanups: (() => Promise<void>)[] = [];
after(() => Promise.all(cleanups.map((c) => c())));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-clone-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a-pushed-file-comes-back-in-a-fresh-clone', { skip, timeout: 60_000 }, async () => {
  const git = await startGitServer();
  cleanups.push(git.stop);
  const url = await git.createRepo('fleet/config');
  const work = await createWorkRepo(url);
  cleanups.push(() => work.dispose());
  await work.writeFiles({ 'apps/web/deployment.yaml': 'kind: Deployment\n' });
  const first = await work.commitAndPush('add web');
  await work.writeFiles({ 'apps/api/service.yaml': 'kind: Service\n' });
  await work.remove(['apps/web']);
  const second = await work.commitAndPush('replace web with api');
  assert.notEqual(first, second);

  const clone = await tempDir();
  await runGit(['clone', '--quiet', url, clone]);
  assert.equal((await runGit(['rev-parse', 'HEAD'], clone)).trim(), second);
  assert.equal(await readFile(join(clone, 'apps/api/service.yaml'), 'utf8'), 'kind: Service\n');
  await assert.rejects(readFile(join(clone, 'apps/web/deployment.yaml')), { code: 'ENOENT' });
});

test('a-wrong-password-is-refused-and-the-right-one-works', { skip, timeout: 60_000 }, async () => {
  const auth = { username: 'fleet', password: 's3cret' };
  const git = await startGitServer({ auth });
  cleanups.push(git.stop);
  const url = await git.createRepo('private');

  const res = await fetch(`${url}/info/refs?service=git-upload-pack`);
  assert.equal(res.status, 401);
  assert.match(res.headers.get('www-authenticate') ?? '', /^Basic /);

  await assert.rejects(
    createWorkRepo(url, { auth: { ...auth, password: 'wrong' } }),
    (err: unknown) =>
      err instanceof CommandFailedError &&
      /Authentication failed|401/.test(err.message) &&
      !err.message.includes('wrong'),
  );

  const work = await createWorkRepo(url, { auth });
  cleanups.push(() => work.dispose());
  await work.writeFiles({ 'README.md': 'hello\n' });
  const sha = await work.commitAndPush('first');
  const clone = await tempDir();
  await runGit(['clone', '--quiet', withCredentials(url, auth), clone]);
  assert.equal((await runGit(['rev-parse', 'HEAD'], clone)).trim(), sha);
});

test(
  'a-push-over-the-post-buffer-and-a-gzipped-fetch-round-trip',
  { skip, timeout: 60_000 },
  async () => {
    // Over http.postBuffer (1 MiB) git sends a chunked body: the no-CONTENT_LENGTH path.
    const git = await startGitServer();
    cleanups.push(git.stop);
    const url = await git.createRepo('big');
    const work = await createWorkRepo(url);
    cleanups.push(() => work.dispose());
    const files: Record<string, string> = {};
    for (let i = 0; i < 40; i++) files[`data/${i}.txt`] = randomBytes(48 * 1024).toString('base64');
    await work.writeFiles(files);
    const sha = await work.commitAndPush('big');
    const clone = await tempDir();
    await runGit(['clone', '--quiet', url, clone]);
    assert.equal((await runGit(['rev-parse', 'HEAD'], clone)).trim(), sha);

    // git gzips only large negotiation bodies; send one by hand to cover HTTP_CONTENT_ENCODING.
    const pkt = (line: string): string => (line.length + 4).toString(16).padStart(4, '0') + line;
    const body = gzipSync(`${pkt(`want ${sha}\n`)}0000${pkt('done\n')}`);
    const res = await fetch(`${url}/git-upload-pack`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-git-upload-pack-request',
        'content-encoding': 'gzip',
      },
      body,
    });
    assert.equal(res.status, 200);
    assert.ok(Buffer.from(await res.arrayBuffer()).includes('PACK'), 'the response carries a pack');
  },
);
