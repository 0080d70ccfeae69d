// Per-cluster identity end to end, as real processes: a hub with its CA, two clusters
// installed the way a user installs them (`flotilla cluster add` → the generated
// manifests applied to the cluster's API server → the agent trades the bootstrap token
// for a certificate → mTLS), and every refusal the identity design promises.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { jetstream } from '@nats-io/jetstream';
import { connect, jwtAuthenticator } from '@nats-io/transport-node';
import { CertificateAuthority, createCa, createCsr, generateKeyPem } from '@flotilla/hub';
import { requireEnv, sleep, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';
import { listClusters, openStream, readAgentIdentity, register } from './clients.js';

const cluster = (name: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${name}\n`;
const REPO = {
  'clusters/alpha.yaml': cluster('alpha'),
  'clusters/beta.yaml': cluster('beta'),
  'bundles/secretish/bundle.yaml':
    'apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: secretish\nspec:\n  source:\n    path: manifests\n  namespace: team\n  substitute: true\n  targets:\n    - clusterSelector: {}\n',
  'bundles/secretish/manifests/cm.yaml':
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: only-for\ndata:\n  cluster: only-for-${cluster.name}\n',
  'bundles/secretish/manifests/ns.yaml':
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n',
};

let fleet: Fleet | undefined;
let caPem = '';
const skip = await requireEnv(['cluster', 'nats', 'git']);

before(async () => {
  if (skip) return;
  // Short certificates so the agents renew during the test (at 2/3 of 20 s): short enough
  // for two renewals in the test, long enough that a renewal delayed by a loaded machine
  // (seen: 4 s late at a load average of 25) does not let the certificate lapse under the
  // tests that follow.
  fleet = await startFleet({
    clusters: ['alpha', 'beta'],
    repoFiles: REPO,
    hubConfigExtra: ['  certValidity: 20s'],
  });
  caPem = await readFile(join(fleet.adminDir, 'ca.crt'), 'utf8');
  await fleet.waitForRevision(fleet.firstCommit);
});

after(async () => {
  await fleet?.stop();
});

test(
  'registration-flow-installs-agents-that-connect-with-their-own-certificate',
  { skip },
  async () => {
    const f = fleet as Fleet;
    for (const name of ['alpha', 'beta']) {
      const id = await readAgentIdentity(f.clusters.get(name)!.kubeconfigPath);
      assert.ok(id, `identity Secret stored in ${name}`);
      assert.match(id.certPem, /BEGIN CERTIFICATE/);
      assert.match(id.keyPem, /PRIVATE KEY/);
    }
    const list = await f.cli(['cluster', 'list']);
    assert.match(list, /alpha\s+<none>\s+registered/);
    assert.match(list, /beta\s+<none>\s+registered/);
    // Secrets never reach logs or CLI output.
    for (const name of ['alpha', 'beta']) {
      const token = (await readFile(join(f.installDir(name), 'token'), 'utf8')).trim();
      for (const log of ['hub.log', 'agent-alpha.log', 'agent-beta.log']) {
        assert.ok(
          !(await readFile(join(f.logDir, log), 'utf8')).includes(token),
          `token of ${name} absent from ${log}`,
        );
      }
      assert.ok(!list.includes(token));
    }
  },
);

test('certificates-are-renewed-without-dropping-the-stream', { skip }, async () => {
  const f = fleet as Fleet;
  const log = join(f.logDir, 'agent-alpha.log');
  await waitFor(
    async () => ((await readFile(log, 'utf8')).match(/certificate renewed/g) ?? []).length >= 2,
    {
      what: 'two renewals in the agent log of alpha',
      timeoutMs: 60_000,
      intervalMs: 250,
    },
  );
  const text = await readFile(log, 'utf8');
  assert.equal(
    (text.match(/connected to hub/g) ?? []).length,
    1,
    'one session for the whole run: renewals never reconnected',
  );
  assert.doesNotMatch(text, /hub connection failed/);
});

test(
  'nats-credentials-issued-at-registration-publish-only-for-their-own-cluster',
  { skip },
  async () => {
    const f = fleet as Fleet;
    const alpha = await readAgentIdentity(f.clusters.get('alpha')!.kubeconfigPath);
    assert.ok(alpha?.natsJwt, 'the hub issued a NATS user JWT to alpha');
    const nc = await connect({
      servers: f.nats.url,
      tls: { caFile: f.nats.caFile as string },
      authenticator: jwtAuthenticator(alpha.natsJwt, new TextEncoder().encode(alpha.natsSeed)),
      inboxPrefix: '_INBOX_alpha',
    });
    try {
      const js = jetstream(nc);
      await js.publish('flotilla.events.alpha.applied', new TextEncoder().encode('{}'), {
        msgID: `own-${Date.now()}`,
        timeout: 5_000,
      });
      await assert.rejects(
        js.publish('flotilla.events.beta.applied', new TextEncoder().encode('{}'), {
          msgID: `forged-${Date.now()}`,
          timeout: 3_000,
        }),
        (err: Error) =>
          /permission/i.test(`${err.message} ${String((err as { cause?: unknown }).cause ?? '')}`),
      );
    } finally {
      await nc.close();
    }
  },
);

test(
  'used-unknown-expired-and-foreign-bootstrap-tokens-are-refused-and-nothing-is-issued',
  { skip },
  async () => {
    const f = fleet as Fleet;
    const csr = createCsr(generateKeyPem(), 'alpha');
    const used = (await readFile(join(f.installDir('alpha'), 'token'), 'utf8')).trim();
    const reused = await register(
      f.hubGrpcAddress,
      { caPem },
      { cluster: 'alpha', token: used, csrPem: csr },
    );
    assert.equal(reused.code, grpc.status.UNAUTHENTICATED);
    assert.match(reused.details, /already used/);

    const unknown = await register(
      f.hubGrpcAddress,
      { caPem },
      { cluster: 'alpha', token: `flt.0123456789abcdef.${'A'.repeat(43)}`, csrPem: csr },
    );
    assert.equal(unknown.code, grpc.status.UNAUTHENTICATED);
    assert.match(unknown.details, /not known/);

    await f.cli([
      'cluster',
      'add',
      'gamma',
      '--token-ttl',
      '1ms',
      '--output-dir',
      f.installDir('gamma'),
    ]);
    await sleep(20);
    const gammaToken = (await readFile(join(f.installDir('gamma'), 'token'), 'utf8')).trim();
    const expired = await register(
      f.hubGrpcAddress,
      { caPem },
      { cluster: 'gamma', token: gammaToken, csrPem: createCsr(generateKeyPem(), 'gamma') },
    );
    assert.equal(expired.code, grpc.status.UNAUTHENTICATED);
    assert.match(expired.details, /expired/);

    await f.cli(['cluster', 'add', 'delta', '--output-dir', f.installDir('delta')]);
    const deltaToken = (await readFile(join(f.installDir('delta'), 'token'), 'utf8')).trim();
    const foreign = await register(
      f.hubGrpcAddress,
      { caPem },
      { cluster: 'alpha', token: deltaToken, csrPem: csr },
    );
    assert.equal(foreign.code, grpc.status.UNAUTHENTICATED);
    assert.match(foreign.details, /another cluster/);

    const list = await f.cli(['cluster', 'list']);
    assert.match(list, /gamma\s+<none>\s+pending/, 'no certificate issued for gamma');
    assert.match(list, /delta\s+<none>\s+pending/, 'no certificate issued for delta');
  },
);

test('a-certificate-of-alpha-cannot-receive-the-state-of-beta', { skip }, async () => {
  const f = fleet as Fleet;
  const alpha = await readAgentIdentity(f.clusters.get('alpha')!.kubeconfigPath);
  assert.ok(alpha);
  const asBeta = await openStream(f.hubGrpcAddress, alpha, 'beta');
  assert.equal(asBeta.code, grpc.status.PERMISSION_DENIED, asBeta.details);
  assert.match(asBeta.details, /certificate is for cluster "alpha"/);
  assert.deepEqual(asBeta.received, [], 'not one message (so no byte of beta state) was sent');

  // The same certificate is good for its own cluster: proof the refusal is about the name.
  const asAlpha = await openStream(f.hubGrpcAddress, alpha, 'alpha', 1_500);
  assert.ok(
    asAlpha.received.some((m) => m.kind === 'welcome'),
    `alpha is welcomed (${asAlpha.details})`,
  );
});

test(
  'a-client-without-a-certificate-or-with-another-ca-cannot-open-a-stream',
  { skip },
  async () => {
    const f = fleet as Fleet;
    const none = await openStream(f.hubGrpcAddress, { caPem }, 'alpha');
    assert.equal(none.code, grpc.status.UNAUTHENTICATED, none.details);
    assert.deepEqual(none.received, []);

    const otherCa = new CertificateAuthority(createCa('someone-else'));
    const forged = otherCa.issueKeyPair('alpha', 'flotilla-cluster', 3_600_000);
    const foreign = await openStream(
      f.hubGrpcAddress,
      { caPem, keyPem: forged.keyPem, certPem: forged.certPem },
      'alpha',
    );
    assert.equal(foreign.code, grpc.status.UNAUTHENTICATED, foreign.details);
    assert.deepEqual(foreign.received, []);
  },
);

test(
  'fleet-status-is-read-with-the-admin-certificate-or-a-token-never-a-cluster-certificate',
  { skip },
  async () => {
    const f = fleet as Fleet;
    // The certificates here live 20 s: on a loaded machine the one read from the
    // kubeconfig may have expired before the agent renewed it (refused as UNAUTHENTICATED,
    // rightly), so the current one is read again until the hub judges a valid one.
    let asAgent: Awaited<ReturnType<typeof listClusters>> | undefined;
    await waitFor(
      async () => {
        const alpha = await readAgentIdentity(f.clusters.get('alpha')!.kubeconfigPath);
        assert.ok(alpha);
        asAgent = await listClusters(f.hubGrpcAddress, alpha);
        return asAgent.code !== grpc.status.UNAUTHENTICATED;
      },
      {
        what: 'a valid certificate of alpha judged by the hub',
        timeoutMs: 20_000,
        intervalMs: 200,
      },
    );
    assert.ok(asAgent);
    assert.equal(asAgent.code, grpc.status.PERMISSION_DENIED, asAgent.details);
    assert.equal(asAgent.details, 'cluster certificates may not read fleet status');
    const anonymous = await listClusters(f.hubGrpcAddress, { caPem });
    assert.equal(anonymous.code, grpc.status.UNAUTHENTICATED, anonymous.details);

    const admin = {
      caPem,
      certPem: await readFile(join(f.adminDir, 'admin.crt'), 'utf8'),
      keyPem: await readFile(join(f.adminDir, 'admin.key'), 'utf8'),
    };
    const asAdmin = await listClusters(f.hubGrpcAddress, admin);
    assert.equal(asAdmin.code, grpc.status.OK, asAdmin.details);
    assert.deepEqual(asAdmin.response?.names.sort(), ['alpha', 'beta']);

    const token = (await f.cli(['token', 'create', 'dashboard', '--ttl', '1h'])).trim();
    const withToken = await listClusters(f.hubGrpcAddress, { caPem }, token);
    assert.equal(withToken.code, grpc.status.OK, withToken.details);
    assert.deepEqual(withToken.response?.names.sort(), ['alpha', 'beta']);
    await f.cli(['token', 'revoke', 'dashboard']);
    const revoked = await listClusters(f.hubGrpcAddress, { caPem }, token);
    assert.equal(revoked.code, grpc.status.UNAUTHENTICATED, revoked.details);
    assert.equal(revoked.details, 'the API token has been revoked');
    // Refusals are logged with the token's name, never the token.
    const refusedLine = async (): Promise<boolean> =>
      (await readFile(join(f.logDir, 'hub.log'), 'utf8'))
        .split('\n')
        .some((l) => l.includes('fleet read refused') && l.includes('dashboard'));
    await waitFor(refusedLine, { what: 'the refusal, with the token name, in the hub log' });
    assert.ok(!(await readFile(join(f.logDir, 'hub.log'), 'utf8')).includes(token));
  },
);

test('a-revoked-cluster-is-cut-off-within-5-seconds', { skip }, async () => {
  const f = fleet as Fleet;
  const beta = await readAgentIdentity(f.clusters.get('beta')!.kubeconfigPath);
  assert.ok(beta);
  const started = Date.now();
  const out = await f.cli(['cluster', 'revoke', 'beta']);
  assert.match(out, /cluster beta revoked; 1 open stream\(s\) closed/);
  // The bound is the product's promise (5 s); the measured time goes to the log, not into an assertion.
  await waitFor(
    async () => {
      const refused = await openStream(f.hubGrpcAddress, beta, 'beta', 1_000);
      return refused.code === grpc.status.UNAUTHENTICATED && refused.received.length === 0;
    },
    { what: 'the revoked certificate of beta refused', timeoutMs: 5_000, intervalMs: 100 },
  );
  const rows = await f.status();
  assert.equal(
    rows.find((r) => r.name === 'beta')?.connected,
    false,
    'the agent of beta is disconnected',
  );
  console.log(
    `# revocation: certificate refused and stream closed ${Date.now() - started} ms after "cluster revoke"`,
  );
  // Alpha is unaffected (its agent re-dialled after the test above took over its session).
  await waitFor(
    async () => (await f.status()).find((r) => r.name === 'alpha')?.connected === true,
    { what: 'alpha connected', timeoutMs: 30_000 },
  );
});
