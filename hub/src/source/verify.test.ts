import assert from 'node:assert/strict';
import fs from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import git from 'isomorphic-git';
import * as openpgp from 'openpgp';
import { ConfigError } from '@flotilla/common';
import { CommitVerifier, UntrustedCommitError } from './verify.js';
import type { SignedCommit } from './verify.js';

interface TestKey {
  publicKey: string;
  privateKey: string;
}

async function newKey(name: string): Promise<TestKey> {
  const { publicKey, privateKey } = await openpgp.generateKey({
    type: 'ecc',
    curve: 'curve25519Legacy',
    userIDs: [{ name, email: `${name}@example.com` }],
    format: 'armored',
  });
  return { publicKey, privateKey };
}

// Signs like `git commit -S`: a detached, armored signature over the raw commit bytes.
async function sign(payload: string, key: TestKey): Promise<string> {
  const signingKeys = await openpgp.readPrivateKey({ armoredKey: key.privateKey });
  const message = await openpgp.createMessage({ binary: Buffer.from(payload) });
  return openpgp.sign({ message, signingKeys, detached: true, format: 'armored' });
}

describe('CommitVerifier on commits written by isomorphic-git', () => {
  let dir: string;
  let trusted: TestKey;
  let stranger: TestKey;
  let verifier: CommitVerifier;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-verify-'));
    await git.init({ fs, dir });
    await writeFile(join(dir, 'a.txt'), 'a\n');
    await git.add({ fs, dir, filepath: 'a.txt' });
    [trusted, stranger] = await Promise.all([newKey('alice'), newKey('mallory')]);
    verifier = await CommitVerifier.fromArmored([{ text: trusted.publicKey, field: 'keys[0]' }]);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const commit = async (key: TestKey | undefined, message: string): Promise<SignedCommit> => {
    const oid = await git.commit({
      fs,
      dir,
      message,
      author: { name: 'a', email: 'a@example.com' },
      ...(key
        ? {
            signingKey: key.privateKey,
            onSign: async ({ payload }) => ({ signature: await sign(payload, key) }),
          }
        : {}),
    });
    const read = await git.readCommit({ fs, dir, oid });
    return { oid, gpgsig: read.commit.gpgsig, payload: read.payload };
  };

  const reason = (err: unknown): string =>
    err instanceof UntrustedCommitError ? err.reason : `not untrusted: ${String(err)}`;

  test('a-commit-signed-by-a-trusted-key-is-accepted', async () => {
    const c = await commit(trusted, 'signed by alice');
    const { keyId } = await verifier.verify(c);
    assert.ok(verifier.keyIds.includes(keyId));
  });

  test('an-unsigned-commit-is-refused-as-unsigned', async () => {
    const c = await commit(undefined, 'unsigned');
    await assert.rejects(
      verifier.verify(c),
      (err) => reason(err) === 'unsigned' && /is not signed/.test((err as Error).message),
    );
  });

  test('a-commit-signed-by-an-unknown-key-is-refused-naming-the-key', async () => {
    const c = await commit(stranger, 'signed by mallory');
    await assert.rejects(
      verifier.verify(c),
      (err) =>
        reason(err) === 'unknown-key' &&
        /signed by key [0-9A-F]{16}, which is not trusted/.test((err as Error).message),
    );
  });

  test('a-tampered-payload-fails-as-a-bad-signature', async () => {
    const c = await commit(trusted, 'original');
    const forged = { ...c, payload: c.payload.replace('original', 'forged!!') };
    await assert.rejects(verifier.verify(forged), (err) => reason(err) === 'bad-signature');
  });

  test('an-ssh-signature-is-refused-as-unsupported', async () => {
    const c = await commit(undefined, 'ssh');
    const sshSig = '-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n';
    await assert.rejects(
      verifier.verify({ ...c, gpgsig: sshSig }),
      (err) => reason(err) === 'unsupported-signature',
    );
  });

  test('a-garbled-signature-is-a-bad-signature-not-a-crash', async () => {
    const c = await commit(undefined, 'garbled');
    const bad = '-----BEGIN PGP SIGNATURE-----\n\nnot base64 at all\n-----END PGP SIGNATURE-----\n';
    await assert.rejects(
      verifier.verify({ ...c, gpgsig: bad }),
      (err) => reason(err) === 'bad-signature',
    );
  });

  test('a-key-file-that-is-not-a-public-key-is-a-config-error-naming-the-field', async () => {
    await assert.rejects(
      CommitVerifier.fromArmored([{ text: 'hello', field: 'sources[0].verify.openpgpKeys[0]' }]),
      (err) => err instanceof ConfigError && err.field === 'sources[0].verify.openpgpKeys[0]',
    );
    await assert.rejects(
      CommitVerifier.fromArmored([{ text: trusted.privateKey, field: 'k' }]),
      /contains a private key/,
    );
    await assert.rejects(
      CommitVerifier.fromFiles(['/nonexistent/key.asc'], 'keys'),
      (err) => err instanceof ConfigError && err.field === 'keys[0]',
    );
  });
});
