import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '@flotilla/common';
import { IdentityAuthority } from './authority.js';
import type { PeerCertificateLike } from './authority.js';
import { BootstrapTokenError, IdentityRefusedError } from './errors.js';
import { createCsr, generateKeyPem } from './pki.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function authority(now?: () => number): Promise<{ a: IdentityAuthority; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-identity-test-'));
  dirs.push(dir);
  const a = new IdentityAuthority({
    stateDir: dir,
    hosts: ['127.0.0.1', 'hub.example.com'],
    logger: silentLogger(),
    ...(now ? { now } : {}),
  });
  await a.start();
  return { a, dir };
}

/** What node's tls reports for a certificate. */
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

test('bootstrap-token-is-single-use-and-issues-a-certificate-naming-the-cluster', async () => {
  const { a } = await authority();
  const { token } = await a.addCluster('edge-eu', { env: 'prod' });
  const issued = await a.register('edge-eu', token, createCsr(generateKeyPem(), 'edge-eu'));
  const cert = new X509Certificate(issued.certPem);
  assert.match(cert.subject, /CN=edge-eu/);
  assert.ok(cert.checkIssued(new X509Certificate(a.caPem)));
  await assert.rejects(
    a.register('edge-eu', token, createCsr(generateKeyPem(), 'edge-eu')),
    (e: Error) => e instanceof BootstrapTokenError && /already used/.test(e.message),
  );
  assert.equal(a.verifyPeer(peer(issued.certPem)).name, 'edge-eu');
});

test('expired-unknown-malformed-and-foreign-tokens-are-refused-without-spending-anything', async () => {
  let now = 1_000_000;
  const { a } = await authority(() => now);
  const { token } = await a.addCluster('edge-eu', {}, 60_000);
  const { token: other } = await a.addCluster('edge-us', {});
  const csr = createCsr(generateKeyPem(), 'edge-eu');
  await assert.rejects(a.register('edge-eu', other, csr), /another cluster/);
  await assert.rejects(
    a.register('edge-eu', 'flt.0000000000000000.' + 'x'.repeat(43), csr),
    /not known/,
  );
  await assert.rejects(a.register('edge-eu', 'not-a-token', csr), /malformed/);
  // A CSR for another name is refused before the token is spent.
  await assert.rejects(
    a.register('edge-eu', token, createCsr(generateKeyPem(), 'edge-us')),
    /names "edge-us", expected "edge-eu"/,
  );
  now += 61_000;
  await assert.rejects(a.register('edge-eu', token, csr), /expired/);
  assert.equal(
    Object.keys(a.list().find((c) => c.name === 'edge-eu')?.serials ?? { x: 1 }).length,
    0,
    'nothing issued',
  );
});

test('tokens-are-stored-only-as-digests-and-the-state-file-is-private', async () => {
  const { a, dir } = await authority();
  const { token } = await a.addCluster('edge-eu', {});
  const file = join(dir, 'identity-state.json');
  const text = await readFile(file, 'utf8');
  assert.ok(!text.includes(token.split('.')[2] as string));
  assert.equal((await stat(file)).mode & 0o077, 0);
  assert.equal((await stat(join(dir, 'ca.key'))).mode & 0o077, 0);
});

test('revoke-invalidates-every-certificate-and-a-new-add-does-not-bring-them-back', async () => {
  const { a } = await authority();
  const { token } = await a.addCluster('edge-eu', {});
  const issued = await a.register('edge-eu', token, createCsr(generateKeyPem(), 'edge-eu'));
  let told = '';
  a.onRevoke((c) => {
    told = c;
    return 1;
  });
  assert.equal(await a.revoke('edge-eu'), 1);
  assert.equal(told, 'edge-eu');
  assert.throws(
    () => a.verifyPeer(peer(issued.certPem)),
    (e: Error) => e instanceof IdentityRefusedError && /revoked/.test(e.message),
  );
  await a.addCluster('edge-eu', {});
  assert.throws(() => a.verifyPeer(peer(issued.certPem)), /revoked/);
});

test('renewal-issues-a-new-certificate-and-keeps-the-old-one-valid-until-it-expires', async () => {
  const { a } = await authority();
  const { token } = await a.addCluster('edge-eu', {});
  const first = await a.register('edge-eu', token, createCsr(generateKeyPem(), 'edge-eu'));
  const id = a.verifyPeer(peer(first.certPem));
  // A cluster may not renew for another name.
  await assert.rejects(a.renew(id, createCsr(generateKeyPem(), 'edge-us')), /expected "edge-eu"/);
  const second = await a.renew(id, createCsr(generateKeyPem(), 'edge-eu'));
  assert.notEqual(second.serial, first.serial);
  assert.equal(a.verifyPeer(peer(second.certPem)).name, 'edge-eu');
  assert.equal(a.verifyPeer(peer(first.certPem)).name, 'edge-eu');
});

test('a-certificate-without-a-known-role-or-cluster-is-refused', async () => {
  const { a, dir } = await authority();
  assert.throws(() => a.verifyPeer(undefined), /client certificate signed by this hub is required/);
  assert.throws(
    () => a.verifyPeer({ subject: { CN: 'x', O: 'someone' }, serialNumber: '01' }),
    /role "someone"/,
  );
  assert.throws(
    () => a.verifyPeer({ subject: { CN: 'ghost', O: 'flotilla-cluster' }, serialNumber: '01' }),
    /not registered/,
  );
  assert.equal(a.verifyPeer(peer(await readFile(join(dir, 'admin.crt'), 'utf8'))).role, 'admin');
});

test('cluster-names-and-labels-are-validated', async () => {
  const { a } = await authority();
  await assert.rejects(a.addCluster('Edge_EU', {}), /DNS label/);
  await assert.rejects(a.addCluster('edge-eu', { 'bad key!': 'x' }), /label key/);
});

test('renewals-are-rate-limited-and-superseded-certificates-are-revoked', async () => {
  let now = Date.now();
  const { a } = await authority(() => now);
  const { token } = await a.addCluster('edge-eu', {});
  const first = await a.register('edge-eu', token, createCsr(generateKeyPem(), 'edge-eu'));
  let current = first;
  const issued = [first];
  let refused = 0;
  // 100 renewals in 11 s, each with the newest certificate, as a hostile agent would (one
  // request signed once and sent again: a fresh RSA key per try only cost the test CPU time).
  const csr = createCsr(generateKeyPem(), 'edge-eu');
  for (let i = 0; i < 100; i++) {
    now += 110;
    try {
      current = await a.renew(a.verifyPeer(peer(current.certPem)), csr);
      issued.push(current);
    } catch (err) {
      assert.match((err as Error).message, /renewed its certificate moments ago: retry in \d+ s/);
      refused++;
    }
  }
  assert.ok(refused >= 80, `most renewals refused (refused ${refused})`);
  const live = issued.filter((c) => {
    try {
      a.verifyPeer(peer(c.certPem));
      return true;
    } catch {
      return false;
    }
  });
  assert.ok(
    live.length <= 2,
    `at most the asking and the new certificate stay live (${live.length})`,
  );
  // The next renewal, with the newest certificate, supersedes the first one.
  now += 61_000;
  await a.renew(a.verifyPeer(peer(current.certPem)), createCsr(generateKeyPem(), 'edge-eu'));
  assert.throws(() => a.verifyPeer(peer(first.certPem)), /has been revoked/);
  assert.equal(a.verifyPeer(peer(current.certPem)).name, 'edge-eu');
});
