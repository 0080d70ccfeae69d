import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '@flotilla/common';
import { IdentityAuthority } from './authority.js';
import type { PeerCertificateLike } from './authority.js';
import { IdentityRefusedError } from './errors.js';
import { createCsr, generateKeyPem } from './pki.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function start(dir: string, now?: () => number): Promise<IdentityAuthority> {
  const a = new IdentityAuthority({
    stateDir: dir,
    hosts: ['127.0.0.1'],
    logger: silentLogger(),
    ...(now ? { now } : {}),
  });
  await a.start();
  return a;
}

function peer(certPem: string): PeerCertificateLike {
  const c = new X509Certificate(certPem);
  const field = (k: string): string | undefined =>
    new RegExp(`(?:^|\\n)${k}=([^\\n]+)`).exec(c.subject)?.[1];
  return {
    subject: { CN: field('CN') as string, O: field('O') as string },
    serialNumber: c.serialNumber,
    valid_to: c.validTo,
  };
}

test('a-person-certificate-is-checked-by-serial-and-revoked-at-once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-admins-'));
  dirs.push(dir);
  const a = await start(dir);
  const root = peer(await readFile(join(dir, 'admin.crt'), 'utf8'));
  assert.equal(a.verifyPeer(root).name, 'flotilla-admin');
  const alice = await a.admins.add('alice', createCsr(generateKeyPem(), 'alice'), 0, 'admin x');
  const alicePeer = peer(alice.certPem);
  // Peers' serials are compared without leading zeros (how TLS reports them varies by
  // Node version), so a serial that happens to start with 0 is shown without it.
  assert.deepEqual(a.verifyPeer(alicePeer), {
    role: 'admin',
    name: 'alice',
    serial: alice.serial.replace(/^0+/, ''),
  });
  // Default lifetime 12 h.
  assert.ok(Math.abs(alice.notAfter.getTime() - Date.now() - 12 * 3_600_000) < 120_000);
  let closed = 0;
  a.admins.onRevoke(() => ((closed += 3), 3));
  assert.equal(await a.admins.revoke('alice'), 3);
  assert.equal(closed, 3);
  assert.throws(() => a.verifyPeer(alicePeer), /administrator "alice" has been revoked/);
  // A certificate signed by the CA for a person the hub never recorded is refused too.
  await assert.rejects(
    a.admins.add('bob', createCsr(generateKeyPem(), 'bob'), 8 * 86_400_000, 'admin x'),
    /at most 7 days/,
  );
  await assert.rejects(
    a.admins.add('Bad_Name', createCsr(generateKeyPem(), 'Bad_Name'), 0, 'admin x'),
    /must be a DNS label/,
  );
  // Re-adding a revoked person starts over: the old certificate stays refused.
  await a.admins.add('alice', createCsr(generateKeyPem(), 'alice'), 0, 'admin x');
  assert.throws(() => a.verifyPeer(alicePeer), IdentityRefusedError);
  // Survives a restart.
  const again = await start(dir);
  assert.throws(() => again.verifyPeer(alicePeer), /has been revoked/);
  assert.equal(again.verifyPeer(root).name, 'flotilla-admin');
});

test('an-expired-person-certificate-is-refused-on-a-long-lived-connection', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-admins-'));
  dirs.push(dir);
  let now = Date.now();
  const a = await start(dir, () => now);
  const c = await a.admins.add('carol', createCsr(generateKeyPem(), 'carol'), 60_000, 'admin x');
  assert.equal(a.verifyPeer(peer(c.certPem)).name, 'carol');
  now += 120_000;
  assert.throws(
    () => a.verifyPeer(peer(c.certPem)),
    /certificate of administrator "carol" has expired/,
  );
});

test('the-first-administrator-is-adopted-from-an-older-state-and-re-admitted-by-recreating-admin-crt', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-admins-'));
  dirs.push(dir);
  await start(dir);
  // A state file written before people existed: no admins at all.
  const file = join(dir, 'identity-state.json');
  const state = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  delete state.admins;
  await writeFile(file, JSON.stringify(state));
  const upgraded = await start(dir);
  const root = peer(await readFile(join(dir, 'admin.crt'), 'utf8'));
  assert.equal(
    upgraded.verifyPeer(root).name,
    'flotilla-admin',
    'the existing admin.crt still works',
  );
  assert.deepEqual(
    upgraded.admins.list().map((x) => [x.name, x.addedBy, x.certificates]),
    [['flotilla-admin', 'hub init', 1]],
  );
  // Revoked (another person exists), it stays revoked across restarts...
  await upgraded.admins.add('dave', createCsr(generateKeyPem(), 'dave'), 0, 'admin flotilla-admin');
  await upgraded.admins.revoke('flotilla-admin');
  assert.throws(() => upgraded.verifyPeer(root), /has been revoked/);
  const restarted = await start(dir);
  assert.throws(() => restarted.verifyPeer(root), /has been revoked/);
  // ...until admin.crt is deleted and the hub restarts: the recovery path.
  await unlink(join(dir, 'admin.crt'));
  await unlink(join(dir, 'admin.key'));
  const recovered = await start(dir);
  const fresh = peer(await readFile(join(dir, 'admin.crt'), 'utf8'));
  assert.equal(recovered.verifyPeer(fresh).name, 'flotilla-admin');
  assert.throws(() => recovered.verifyPeer(root), /has been revoked/, 'the old one stays refused');
});
