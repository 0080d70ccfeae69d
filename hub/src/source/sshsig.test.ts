// SSH-signed commits checked against signatures made by the real `ssh-keygen -Y sign`
// (what `git commit -S` runs with gpg.format=ssh), for every key type we accept.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { requirePrerequisite } from '@flotilla/test-env';
import { parseSshSignature, sshFingerprint } from './sshsig.js';
import { CommitVerifier, UntrustedCommitError, commitPayload } from './verify.js';
import type { SignedCommit } from './verify.js';

const run = promisify(execFile);
const skip = await requirePrerequisite(
  'ssh-keygen',
  async () => {
    // `-l` on an empty file fails, but only a missing program rejects with ENOENT.
    await run('ssh-keygen', ['-l', '-f', '/dev/null']).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw err;
    });
  },
  'apt-get install openssh-client',
);

/** Committer time of the test payloads: 2023-11-14T22:13:20Z. */
const COMMITTED = 1_700_000_000;
const payloadOf = (msg: string): string =>
  `tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n` +
  `author Alice <alice@example.com> 1600000000 +0200\n` +
  `committer Alice <alice@example.com> ${COMMITTED} +0200\n\n${msg}\n`;

type KeyName = 'ed25519' | 'ecdsa-p256' | 'ecdsa-p384' | 'rsa' | 'stranger';
const KEYGEN_ARGS: Record<KeyName, string[]> = {
  ed25519: ['-t', 'ed25519'],
  'ecdsa-p256': ['-t', 'ecdsa', '-b', '256'],
  'ecdsa-p384': ['-t', 'ecdsa', '-b', '384'],
  rsa: ['-t', 'rsa', '-b', '2048'],
  stranger: ['-t', 'ed25519'],
};

describe('SSH-signed commits (signatures by the real ssh-keygen)', { skip }, () => {
  let dir: string;
  const pub: Partial<Record<KeyName, string>> = {};
  let n = 0;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flotilla-sshsig-'));
    await Promise.all(
      (Object.keys(KEYGEN_ARGS) as KeyName[]).map(async (k) => {
        const file = join(dir, k);
        await run('ssh-keygen', ['-q', ...KEYGEN_ARGS[k], '-N', '', '-C', k, '-f', file]);
        pub[k] = (await readFile(`${file}.pub`, 'utf8')).trim();
      }),
    );
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /** Signs `payload` as git does (`ssh-keygen -Y sign -n git`), or in another namespace. */
  const sign = async (key: KeyName, payload: string, namespace = 'git'): Promise<string> => {
    const file = join(dir, `payload-${++n}`);
    await writeFile(file, payload);
    await run('ssh-keygen', ['-Y', 'sign', '-n', namespace, '-f', join(dir, key), file]);
    return readFile(`${file}.sig`, 'utf8');
  };
  const commit = async (key: KeyName, msg: string, namespace?: string): Promise<SignedCommit> => {
    const payload = payloadOf(msg);
    return { oid: `c${++n}`, gpgsig: await sign(key, payload, namespace), payload };
  };
  /** A verifier trusting the given allowed_signers text. */
  const verifierFor = async (allowed: string): Promise<CommitVerifier> => {
    const file = join(dir, `allowed-${++n}`);
    await writeFile(file, allowed);
    return CommitVerifier.fromConfig(
      { openpgpKeyFiles: [], sshAllowedSignersFiles: [file] },
      'verify',
    );
  };
  const line = (who: string, key: KeyName, options = 'namespaces="git"'): string =>
    `${who} ${options} ${pub[key]}\n`;
  const fingerprint = async (key: KeyName): Promise<string> =>
    (await run('ssh-keygen', ['-l', '-f', join(dir, `${key}.pub`)])).stdout.split(' ')[1] ?? '';
  const refusal = (err: unknown): string =>
    err instanceof UntrustedCommitError
      ? `${err.reason}: ${err.message}`
      : `not untrusted: ${String(err)}`;

  for (const key of ['ed25519', 'ecdsa-p256', 'ecdsa-p384', 'rsa'] as const) {
    test(`a-commit-signed-by-a-trusted-${key}-key-is-accepted-naming-the-principal`, async () => {
      const v = await verifierFor(line(`${key}@example.com`, key));
      const result = await v.verify(await commit(key, `signed with ${key}`));
      assert.deepEqual(result, {
        kind: 'ssh',
        keyId: await fingerprint(key),
        principals: `${key}@example.com`,
      });
    });
  }

  test('the-fingerprint-is-the-one-ssh-keygen-prints', async () => {
    const sig = parseSshSignature(await sign('ed25519', 'x'));
    assert.equal(sshFingerprint(sig.publicKey), await fingerprint('ed25519'));
    assert.equal(sig.namespace, 'git');
    assert.equal(sig.hashAlgorithm, 'sha512');
  });

  test('a-tampered-payload-fails-as-a-bad-signature', async () => {
    const v = await verifierFor(line('alice', 'ed25519') + line('rita', 'rsa'));
    for (const key of ['ed25519', 'rsa'] as const) {
      const c = await commit(key, 'original');
      const forged = { ...c, payload: c.payload.replace('original', 'forged!!') };
      const fp = await fingerprint(key);
      await assert.rejects(v.verify(forged), (err) => {
        assert.equal(
          refusal(err),
          `bad-signature: commit ${c.oid} is not trusted: its signature by SSH key ${fp} ` +
            `(${key === 'rsa' ? 'rita' : 'alice'}) does not verify`,
        );
        return true;
      });
    }
  });

  test('a-signature-in-another-namespace-fails-as-a-bad-signature', async () => {
    const v = await verifierFor(line('alice', 'ed25519'));
    await assert.rejects(v.verify(await commit('ed25519', 'for files', 'file')), (err) =>
      /^bad-signature: .* is for namespace "file", not "git"$/.test(refusal(err)),
    );
  });

  test('a-key-missing-from-allowed-signers-is-an-unknown-key-named-by-fingerprint', async () => {
    const v = await verifierFor(line('alice', 'ed25519'));
    const fp = await fingerprint('stranger');
    await assert.rejects(v.verify(await commit('stranger', 'who?')), (err) => {
      assert.match(refusal(err), /^unknown-key: /);
      assert.ok(refusal(err).endsWith(`it is signed by SSH key ${fp}, which is not trusted`));
      return true;
    });
  });

  test('a-key-trusted-only-for-other-namespaces-is-refused', async () => {
    const v = await verifierFor(line('alice', 'ed25519', 'namespaces="file,!git"'));
    await assert.rejects(v.verify(await commit('ed25519', 'x')), (err) =>
      /^unknown-key: .*\(alice\) is not trusted for namespace "git"$/.test(refusal(err)),
    );
  });

  test('validity-windows-are-checked-against-the-committer-time', async () => {
    const c = await commit('ed25519', 'dated');
    const expired = await verifierFor(line('alice', 'ed25519', 'valid-before="20200101Z"'));
    await assert.rejects(expired.verify(c), (err) => {
      assert.match(
        refusal(err),
        /^unknown-key: .*\(alice\) is trusted only until 2020-01-01T00:00:00.000Z, and the commit was made 2023-11-14T22:13:20.000Z$/,
      );
      return true;
    });
    const future = await verifierFor(line('alice', 'ed25519', 'valid-after="20300101Z"'));
    await assert.rejects(future.verify(c), (err) => /only from 2030-01-01/.test(refusal(err)));
    const window = await verifierFor(
      line(
        'alice',
        'ed25519',
        'namespaces="git",valid-after="20231114Z",valid-before="202311142213Z"',
      ) + line('alice-2024', 'ed25519', 'valid-after="202311142213Z",valid-before="20241231Z"'),
    );
    // The first line ends a minute before the commit; the second line covers it.
    assert.equal((await window.verify(c)).principals, 'alice-2024');
  });

  test('sha1-rsa-and-fido-signatures-are-refused-as-unsupported', async () => {
    const v = await verifierFor(line('rita', 'rsa') + line('alice', 'ed25519'));
    const rsa = await commit('rsa', 'sha1');
    const sha1 = rewrite(rsa.gpgsig ?? '', { signatureType: 'ssh-rsa' });
    await assert.rejects(v.verify({ ...rsa, gpgsig: sha1 }), (err) =>
      /^unsupported-signature: .*RSA signatures with SHA-1 \(ssh-rsa\) are not supported/.test(
        refusal(err),
      ),
    );
    const ed = await commit('ed25519', 'fido');
    const skKey = Buffer.concat([
      wire('sk-ssh-ed25519@openssh.com'),
      wire(Buffer.alloc(32, 7)),
      wire('ssh:'),
    ]);
    await assert.rejects(
      v.verify({ ...ed, gpgsig: rewrite(ed.gpgsig ?? '', { publicKey: skKey }) }),
      (err) => /^unsupported-signature: .*FIDO security-key keys/.test(refusal(err)),
    );
  });

  test('signature-kinds-without-trusted-keys-are-unsupported-and-garbage-is-bad', async () => {
    const v = await verifierFor(line('alice', 'ed25519'));
    const c = await commit('ed25519', 'kinds');
    const pgp = '-----BEGIN PGP SIGNATURE-----\n\nwx0=\n-----END PGP SIGNATURE-----\n';
    await assert.rejects(v.verify({ ...c, gpgsig: pgp }), (err) =>
      /^unsupported-signature: .*signed with OpenPGP, but no OpenPGP keys are trusted$/.test(
        refusal(err),
      ),
    );
    const garbage = '-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n-----END SSH SIGNATURE-----\n';
    await assert.rejects(v.verify({ ...c, gpgsig: garbage }), (err) =>
      /^bad-signature: .*cannot be parsed \(truncated data\)$/.test(refusal(err)),
    );
    await assert.rejects(v.verify({ ...c, gpgsig: undefined }), (err) =>
      /^unsigned: /.test(refusal(err)),
    );
  });
});

test('the-signed-payload-is-the-commit-without-its-gpgsig-header', () => {
  const raw =
    'tree t\nparent p\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n' +
    'gpgsig -----BEGIN SSH SIGNATURE-----\n U1NIU0lH\n -----END SSH SIGNATURE-----\n' +
    'mergetag object x\n type commit\n\nmessage\n\n indented body\n';
  assert.equal(
    commitPayload(raw),
    'tree t\nparent p\nauthor A <a@x> 1 +0000\ncommitter A <a@x> 1 +0000\n' +
      'mergetag object x\n type commit\n\nmessage\n\n indented body\n',
  );
  const unsigned = 'tree t\ncommitter A <a@x> 1 +0000\n\nmsg\n';
  assert.equal(commitPayload(unsigned), unsigned);
});

/** An SSH `string`. */
function wire(b: Buffer | string): Buffer {
  const data = Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

/** Re-armors a real signature with some fields replaced (kinds ssh-keygen will not make). */
function rewrite(armored: string, change: { signatureType?: string; publicKey?: Buffer }): string {
  const s = parseSshSignature(armored);
  const blob = Buffer.concat([
    Buffer.from('SSHSIG'),
    Buffer.from([0, 0, 0, 1]),
    wire(change.publicKey ?? s.publicKey),
    wire(s.namespace),
    wire(s.reserved),
    wire(s.hashAlgorithm),
    wire(Buffer.concat([wire(change.signatureType ?? s.signatureType), s.signature])),
  ]);
  const body = blob.toString('base64').replace(/(.{70})/g, '$1\n');
  return `-----BEGIN SSH SIGNATURE-----\n${body}\n-----END SSH SIGNATURE-----\n`;
}
