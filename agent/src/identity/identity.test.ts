import assert from 'node:assert/strict';
import { test } from 'node:test';
import forge from 'node-forge';
import { compileConfig } from '../config/config.js';
import { MutableCertificateProvider, renewRetryDelayMs } from './identity.js';
import { createCsr, generatePrivateKey } from './keys.js';

test('csr-names-the-cluster-and-is-signed-by-the-agent-key', async () => {
  const key = generatePrivateKey();
  const csr = forge.pki.certificationRequestFromPem(await createCsr(key, 'edge-eu'));
  assert.ok(csr.verify());
  assert.equal(csr.subject.getField('CN')?.value, 'edge-eu');
  assert.doesNotMatch(
    await createCsr(key, 'edge-eu'),
    /PRIVATE KEY/,
    'only the public key leaves the agent',
  );
});

test('certificate-provider-hands-new-material-to-current-and-later-listeners', async () => {
  const p = new MutableCertificateProvider();
  const seen: string[] = [];
  p.addIdentityCertificateListener((u) => seen.push(`early:${u?.certificate.toString()}`));
  p.update({ keyPem: 'k1', certPem: 'c1', caPem: 'ca', natsSeed: '', natsJwt: '' });
  p.addIdentityCertificateListener((u) => seen.push(`late:${u?.certificate.toString()}`));
  await new Promise((r) => setImmediate(r));
  p.update({ keyPem: 'k2', certPem: 'c2', caPem: 'ca', natsSeed: '', natsJwt: '' });
  assert.deepEqual(seen, ['early:c1', 'late:c1', 'early:c2', 'late:c2']);
});

test('insecure-and-a-bootstrap-token-are-exclusive', () => {
  assert.throws(
    () =>
      compileConfig(
        {
          cluster: 'a',
          hub: 'h:1',
          nats: 'nats://n:4222',
          insecure: true,
          bootstrapTokenFile: '/t',
        },
        '0',
      ),
    /registration needs TLS/,
  );
});

test('a-failed-renewal-is-retried-before-a-short-certificate-lapses', () => {
  // 24 h certificates keep the 30 s retry; a 12 s one with 4 s left retries after 1 s,
  // several times before it lapses; an expired one retries every second.
  assert.equal(renewRetryDelayMs(8 * 3_600_000), 30_000);
  assert.equal(renewRetryDelayMs(4_000), 1_000);
  assert.equal(renewRetryDelayMs(40_000), 10_000);
  assert.equal(renewRetryDelayMs(-5_000), 1_000);
  for (const left of [2_000, 6_000, 60_000, 200_000]) assert.ok(renewRetryDelayMs(left) < left);
});
