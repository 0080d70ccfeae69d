// Administrators as people, scoped API tokens and the audit log, end to end with real
// processes: the hub (its CA, gRPC and HTTPS), nats-server (the audit stream) and a Git
// server, driven through the `flotilla` CLI as an operator would.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const cluster = (name: string, env: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${name}\n  labels:\n    env: ${env}\n`;
const REPO = {
  'clusters/stage-1.yaml': cluster('stage-1', 'staging'),
  'clusters/prod-1.yaml': cluster('prod-1', 'prod'),
};

let fleet: Fleet | undefined;
let caPem = '';
const skip = await requireEnv(['nats', 'git']);

before(async () => {
  if (skip) return;
  fleet = await startFleet({ clusters: [], repoFiles: REPO });
  caPem = await readFile(join(fleet.adminDir, 'ca.crt'), 'utf8');
});

after(async () => {
  await fleet?.stop();
});

/** An HTTPS request to the hub with a bearer token; the status and body. */
function https(
  path: string,
  token: string,
  method = 'GET',
): Promise<{ status: number; body: string }> {
  const f = fleet as Fleet;
  return new Promise((resolve, reject) => {
    const req = request(
      `${f.hubHttpUrl}${path}`,
      { method, ca: caPem, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function clusterNames(f: Fleet, env: NodeJS.ProcessEnv = {}): Promise<string[]> {
  const out = JSON.parse(await f.cli(['get', 'clusters', '-o', 'json'], env)) as
    { clusters: { name: string }[] } | { name: string }[];
  return (Array.isArray(out) ? out : out.clusters).map((c) => c.name).sort();
}

test('a-revoked-person-is-refused-at-once-by-the-cli-over-grpc-and-https', { skip }, async () => {
  const f = fleet as Fleet;
  const aliceDir = join(f.logDir, 'alice');
  await f.cli(['admin', 'add', 'alice', '--output-dir', aliceDir, '--ttl', '1h']);
  const alice = { FLOTILLA_ADMIN_DIR: aliceDir };
  assert.deepEqual(await clusterNames(f, alice), ['prod-1', 'stage-1'], 'alice reads over HTTPS');
  assert.match(await f.cli(['cluster', 'list'], alice), /NAME/, 'alice calls the Identity service');
  const list = JSON.parse(await f.cli(['admin', 'list', '-o', 'json'])) as {
    admins: { name: string; certificates: number; addedBy: string }[];
  };
  assert.deepEqual(
    list.admins.map((a) => [a.name, a.certificates, a.addedBy]),
    [
      ['alice', 1, 'admin flotilla-admin'],
      ['flotilla-admin', 1, 'hub init'],
    ],
  );
  assert.match(await f.cli(['admin', 'revoke', 'alice']), /administrator alice revoked/);
  await assert.rejects(f.cli(['get', 'clusters'], alice), /administrator "alice" has been revoked/);
  await assert.rejects(
    f.cli(['cluster', 'add', 'x', '--output-dir', join(f.logDir, 'x')], alice),
    /UNAUTHENTICATED: administrator "alice" has been revoked/,
  );
  await assert.rejects(
    f.cli(['admin', 'revoke', 'flotilla-admin']),
    /last one with a valid certificate/,
  );
});

test(
  'scoped-tokens-see-only-their-clusters-and-need-the-rollout-scope-to-act',
  { skip },
  async () => {
    const f = fleet as Fleet;
    const staging = (
      await f.cli(['token', 'create', 'staging', '--selector', 'env=staging'])
    ).trim();
    const reader = (await f.cli(['token', 'create', 'reader'])).trim();
    assert.deepEqual(
      await clusterNames(f, {
        FLOTILLA_ADMIN_DIR: join(f.logDir, 'none'),
        FLOTILLA_CA_FILE: join(f.adminDir, 'ca.crt'),
        FLOTILLA_TOKEN: staging,
      }),
      ['stage-1'],
    );
    assert.equal((await https('/api/v1/clusters/prod-1', staging)).status, 404);
    assert.equal((await https('/api/v1/clusters/stage-1', staging)).status, 200);
    const approve = await https('/api/v1/rollouts/web/approve', reader, 'POST');
    assert.equal(approve.status, 403);
    assert.match(approve.body, /--scope rollout/);
    assert.match(await f.cli(['token', 'list']), /staging\s+active\s+read\s+env=staging/);
  },
);

test('every-write-is-audited-durably-and-survives-a-hub-restart', { skip }, async () => {
  const f = fleet as Fleet;
  const audit = async (): Promise<string[]> =>
    (
      JSON.parse(await f.cli(['history', '--kind', 'audit', '-o', 'json'])) as {
        entries: { result: string; audit: { actor: string; action: string; target: string } }[];
      }
    ).entries.map((e) => `${e.audit.actor} ${e.audit.action} ${e.audit.target} ${e.result}`);
  const want = [
    'admin flotilla-admin admin.add alice ok',
    'admin flotilla-admin admin.revoke alice ok',
    'certificate alice (flotilla-admin) cluster.add x denied',
    'admin flotilla-admin admin.revoke flotilla-admin failed',
    'admin flotilla-admin token.create staging ok',
    'admin flotilla-admin token.create reader ok',
    'token reader rollout.approve web denied',
  ];
  const before = await audit();
  for (const w of want) assert.ok(before.includes(w), `audit has "${w}":\n${before.join('\n')}`);
  await f.restartHub();
  // The restarted hub reads the audit stream back in the background.
  await waitFor(
    async () => {
      const now = await audit();
      return want.every((w) => now.includes(w));
    },
    { what: 'every audit entry back after the restart', timeoutMs: 60_000, intervalMs: 250 },
  );
  const table = await f.cli(['history', '--kind', 'audit']);
  assert.match(table, /audit\s+.*denied\s+token reader: rollout\.approve web/);
});
