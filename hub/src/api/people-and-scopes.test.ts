// Administrators as people, scoped API tokens and the audit log, over real TLS: a real
// identity authority (CA, certificates, tokens), the Identity and FleetService gRPC
// services and the HTTPS API as the hub serves them, with the hub's history and audit log.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Metadata, credentials, status as GrpcStatus } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { silentLogger } from '@flotilla/common';
import type { FleetServiceClient, IdentityClient } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { AuditLog } from '../audit/audit-log.js';
import type { AuditRecord } from '../audit/audit-log.js';
import { HistoryLog } from '../history/history-log.js';
import type { HistoryEntry } from '../history/history-log.js';
import { IdentityAuthority } from '../identity/authority.js';
import { createCsr, generateKeyPem } from '../identity/pki.js';
import { identityHandlers } from '../identity/service.js';
import { FleetStatus } from '../status/fleet-status.js';
import { startGrpcServer } from '../stream/grpc-server.js';
import type { RunningGrpcServer } from '../stream/grpc-server.js';
import { newRollout } from '../rollout/machine.js';
import { twoStages } from '../rollout/testing.js';
import { rolloutView } from '../rollout/view.js';
import { ReadAccess } from './access.js';
import { fleetServiceHandlers } from './grpc-fleet.js';
import { startHttpApi } from './http.js';
import type { RunningHttpApi } from './http.js';
import type { RolloutsApi } from './types.js';

interface Pair {
  certPem: string;
  keyPem: string;
}

let dir = '';
let authority: IdentityAuthority;
let grpcServer: RunningGrpcServer;
let http: RunningHttpApi;
let root: Pair;
const stored: AuditRecord[] = [];
const rollouts: RolloutsApi = {
  list: () => [],
  get: () => undefined,
  act: async (bundle) =>
    rolloutView(
      newRollout(`${bundle}@abcdef123456-1`, bundle, 'abcdef1234567890', twoStages(), 1),
      1,
    ),
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flotilla-people-test-'));
  authority = new IdentityAuthority({
    stateDir: dir,
    hosts: ['127.0.0.1'],
    logger: silentLogger(),
  });
  await authority.start();
  root = {
    certPem: await readFile(join(dir, 'admin.crt'), 'utf8'),
    keyPem: await readFile(join(dir, 'admin.key'), 'utf8'),
  };
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const desired = { revision: 'r1', digest: 'sha256:d1', bundles: [] };
  status.setFleet([
    { name: 'alpha', labels: { env: 'staging' }, desired },
    { name: 'beta', labels: { env: 'prod' }, desired },
  ]);
  const history = new HistoryLog({ retentionMs: 86_400_000 });
  for (const cluster of ['alpha', 'beta'])
    history.addRollout({
      id: `t-${cluster}`,
      atMs: Date.now(),
      cluster,
      bundle: 'web',
      rollout: 'web@abc',
      revision: 'abcdef1234567890',
      stage: 0,
      from: 'Pending',
      to: 'Updating',
      message: `${cluster} updating`,
    });
  const audit = new AuditLog({
    writer: { publish: async (r) => void stored.push(r) },
    history,
    logger: silentLogger(),
  });
  const access = new ReadAccess(authority, silentLogger());
  authority.admins.onRevoke((name) => access.closeStreams('certificate', name, 'revoked'));
  authority.apiTokens.onRevoke((name) => access.closeStreams('token', name, 'revoked'));
  const tls = { caPem: authority.caPem, ...authority.servingPair };
  grpcServer = await startGrpcServer(
    '127.0.0.1:0',
    {
      agentStream: { Connect: (call) => call.end() },
      fleet: fleetServiceHandlers(status, history, access, rollouts, audit),
      identity: identityHandlers({ authority, logger: silentLogger(), audit }),
    },
    tls,
  );
  http = await startHttpApi(
    '127.0.0.1',
    0,
    {
      status,
      history,
      sources: { sources: () => [] },
      readiness: { check: () => ({ ready: true, reasons: [] }) },
      logger: silentLogger(),
      access,
      rollouts,
      audit,
    },
    tls,
  );
});

after(async () => {
  await grpcServer?.stop(0);
  await http?.stop();
  await rm(dir, { recursive: true, force: true });
});

function grpcCreds(client?: Pair) {
  const ca = Buffer.from(authority.caPem);
  return client
    ? credentials.createSsl(ca, Buffer.from(client.keyPem), Buffer.from(client.certPem))
    : credentials.createSsl(ca);
}

function fleetClient(client?: Pair): FleetServiceClient {
  const { FleetService } = loadFlotillaProto();
  return new FleetService(`127.0.0.1:${grpcServer.port}`, grpcCreds(client)) as FleetServiceClient;
}

function md(bearer?: string): Metadata {
  const m = new Metadata();
  if (bearer) m.set('authorization', `Bearer ${bearer}`);
  return m;
}

/** One Identity call as `client`; the status code and the answer. */
function identity<T>(
  client: Pair,
  call: (c: IdentityClient, cb: (err: ServiceError | null, res?: T) => void) => void,
): Promise<{ code: number; details: string; res?: T }> {
  const { Identity } = loadFlotillaProto();
  const c = new Identity(`127.0.0.1:${grpcServer.port}`, grpcCreds(client)) as IdentityClient;
  return new Promise((resolve) =>
    call(c, (err, res) => {
      c.close();
      resolve({
        code: err ? err.code : GrpcStatus.OK,
        details: err?.details ?? '',
        ...(res ? { res } : {}),
      });
    }),
  );
}

async function addAdmin(name: string): Promise<Pair> {
  const keyPem = generateKeyPem();
  const out = await identity<{ certificatePem: string }>(root, (c, cb) =>
    c.AddAdmin({ name, csrPem: createCsr(keyPem, name), ttlMs: 3_600_000 }, cb),
  );
  assert.equal(out.code, GrpcStatus.OK, out.details);
  return { certPem: out.res?.certificatePem ?? '', keyPem };
}

function grpcList(client?: Pair, bearer?: string): Promise<{ code: number; names: string[] }> {
  const c = fleetClient(client);
  return new Promise((resolve) =>
    c.ListClusters({}, md(bearer), (err, res) => {
      c.close();
      resolve({
        code: err ? err.code : GrpcStatus.OK,
        names: (res?.clusters ?? []).map((x) => x.name),
      });
    }),
  );
}

function grpcHistory(bearer: string): Promise<string[]> {
  const c = fleetClient();
  return new Promise((resolve, reject) =>
    c.QueryHistory({}, md(bearer), (err, res) => {
      c.close();
      if (err) reject(err);
      else resolve((res?.entries ?? []).map((e) => e.cluster));
    }),
  );
}

function grpcAct(bearer: string): Promise<number> {
  const c = fleetClient();
  return new Promise((resolve) =>
    c.RolloutAction({ bundle: 'web', action: 'approve' }, md(bearer), (err) => {
      c.close();
      resolve(err ? err.code : GrpcStatus.OK);
    }),
  );
}

/** An HTTPS request; the status and body. */
function https(
  path: string,
  opts: { client?: Pair; bearer?: string; method?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `https://127.0.0.1:${http.port}${path}`,
      {
        method: opts.method ?? 'GET',
        ca: authority.caPem,
        ...(opts.client ? { cert: opts.client.certPem, key: opts.client.keyPem } : {}),
        ...(opts.bearer ? { headers: { authorization: `Bearer ${opts.bearer}` } } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** Opens the HTTP watch; `first` resolves at the first event, `ended` with everything sent once it ends. */
function httpWatch(opts: { client?: Pair; bearer?: string } = {}): {
  first: Promise<string>;
  ended: Promise<string>;
} {
  let body = '';
  let onFirst!: (s: string) => void;
  const first = new Promise<string>((r) => (onFirst = r));
  const ended = new Promise<string>((resolve, reject) => {
    const req = request(
      `https://127.0.0.1:${http.port}/api/v1/watch`,
      {
        ca: authority.caPem,
        ...(opts.client ? { cert: opts.client.certPem, key: opts.client.keyPem } : {}),
        ...(opts.bearer ? { headers: { authorization: `Bearer ${opts.bearer}` } } : {}),
      },
      (res) => {
        res.on('data', (d: Buffer) => {
          body += d.toString('utf8');
          if (body.includes('event: synced')) onFirst(body);
        });
        res.on('end', () => resolve(body));
        res.on('close', () => resolve(body));
        res.on('error', () => resolve(body));
      },
    );
    req.on('error', reject);
    req.end();
  });
  return { first, ended };
}

test('a-revoked-administrator-certificate-is-refused-at-once-on-grpc-and-http', async () => {
  const alice = await addAdmin('alice');
  assert.equal((await https('/api/v1/clusters', { client: alice })).status, 200);
  assert.equal((await grpcList(alice)).code, GrpcStatus.OK);
  // Open streams of alice: an HTTP watch and a gRPC watch.
  const watch = httpWatch({ client: alice });
  await watch.first;
  const c = fleetClient(alice);
  const grpcWatch = c.Watch({}, new Metadata());
  let started!: () => void;
  const firstEvent = new Promise<void>((r) => (started = r));
  const grpcEnded = new Promise<number>((resolve) => {
    grpcWatch.on('error', (err: ServiceError) => resolve(err.code));
    grpcWatch.on('data', () => started());
  });
  await firstEvent;
  const revoked = await identity<{ streamsClosed: number }>(root, (cl, cb) =>
    cl.RevokeAdmin({ name: 'alice' }, cb),
  );
  assert.equal(revoked.code, GrpcStatus.OK, revoked.details);
  assert.equal(revoked.res?.streamsClosed, 2, 'both open watches of alice were closed');
  assert.equal(await grpcEnded, GrpcStatus.UNAUTHENTICATED);
  c.close();
  assert.match(await watch.ended, /event: error\ndata: .*UNAUTHENTICATED/);
  const refused = await https('/api/v1/clusters', { client: alice });
  assert.equal(refused.status, 401);
  assert.match(refused.body, /administrator \\"alice\\" has been revoked/);
  assert.equal((await grpcList(alice)).code, GrpcStatus.UNAUTHENTICATED);
  const act = await identity(alice, (cl, cb) => cl.AddCluster({ name: 'gamma' }, cb));
  assert.equal(act.code, GrpcStatus.UNAUTHENTICATED);
  // The first administrator still works; the last one with a valid certificate cannot be revoked.
  assert.equal((await grpcList(root)).code, GrpcStatus.OK);
  const last = await identity(root, (cl, cb) => cl.RevokeAdmin({ name: 'flotilla-admin' }, cb));
  assert.equal(last.code, GrpcStatus.FAILED_PRECONDITION);
  assert.match(last.details, /last one with a valid certificate/);
});

test('a-read-token-cannot-approve-a-rollout-and-a-rollout-token-can', async () => {
  const create = (name: string, scopes: string[], selector = '') =>
    identity<{ token: string }>(root, (c, cb) =>
      c.CreateApiToken({ name, scopes, selector }, cb),
    ).then((o) => o.res?.token ?? '');
  const reader = await create('reader', []);
  const roller = await create('roller', ['rollout']);
  const staging = await create('staging-roller', ['rollout'], 'env=staging');
  const post = (bearer: string) =>
    https('/api/v1/rollouts/web/approve', { bearer, method: 'POST' });
  const denied = await post(reader);
  assert.equal(denied.status, 403);
  assert.match(denied.body, /may only read: rollout actions need .* --scope rollout/);
  assert.equal(await grpcAct(reader), GrpcStatus.PERMISSION_DENIED);
  assert.equal((await post(roller)).status, 200);
  assert.equal(await grpcAct(roller), GrpcStatus.OK);
  // A token limited to some clusters cannot act on what spans the fleet.
  assert.equal((await post(staging)).status, 403);
});

test('a-token-scoped-to-env-staging-cannot-read-env-prod-clusters', async () => {
  const out = await identity<{ token: string }>(root, (c, cb) =>
    c.CreateApiToken({ name: 'staging', scopes: [], selector: 'env=staging' }, cb),
  );
  const token = out.res?.token ?? '';
  const get = async (path: string) => https(path, { bearer: token });
  const list = JSON.parse((await get('/api/v1/clusters')).body) as { clusters: { name: string }[] };
  assert.deepEqual(
    list.clusters.map((c) => c.name),
    ['alpha'],
  );
  assert.equal((await get('/api/v1/clusters/beta')).status, 404);
  assert.equal((await get('/api/v1/clusters/alpha')).status, 200);
  const history = JSON.parse((await get('/api/v1/history')).body) as { entries: HistoryEntry[] };
  assert.deepEqual(
    history.entries.map((e) => e.cluster),
    ['alpha'],
  );
  assert.equal((await get('/api/v1/history?cluster=beta')).status, 404);
  assert.equal((await get('/api/v1/rollouts')).status, 403);
  assert.deepEqual((await grpcList(undefined, token)).names, ['alpha']);
  assert.deepEqual(await grpcHistory(token), ['alpha']);
  const watch = httpWatch({ bearer: token });
  const snapshot = await watch.first;
  assert.match(snapshot, /"name":"alpha"/);
  assert.doesNotMatch(snapshot, /"name":"beta"/);
  // Revoking the token ends its watch at once.
  await identity(root, (c, cb) => c.RevokeApiToken({ name: 'staging' }, cb));
  assert.match(await watch.ended, /UNAUTHENTICATED/);
  // An unlimited token still sees both.
  const all = await identity<{ token: string }>(root, (c, cb) =>
    c.CreateApiToken({ name: 'all', scopes: [] }, cb),
  );
  assert.deepEqual((await grpcList(undefined, all.res?.token)).names, ['alpha', 'beta']);
});

test('every-write-is-in-the-audit-log-with-who-what-when-and-result', async () => {
  const added = await identity<{ token: string }>(root, (c, cb) =>
    c.AddCluster({ name: 'gamma', labels: {} }, cb),
  );
  await identity(root, (c, cb) => c.RevokeCluster({ name: 'gamma' }, cb));
  const bob = await addAdmin('bob');
  const refused = await identity(bob, (c, cb) => c.RevokeAdmin({ name: 'nobody' }, cb));
  assert.equal(refused.code, GrpcStatus.INVALID_ARGUMENT);
  const res = await https('/api/v1/history?kind=audit&limit=100', { client: root });
  const entries = (JSON.parse(res.body) as { entries: HistoryEntry[] }).entries;
  const seen = entries.map(
    (e) => `${e.audit?.actor} ${e.audit?.action} ${e.audit?.target} ${e.result}`,
  );
  for (const want of [
    'admin flotilla-admin admin.add alice ok',
    'admin flotilla-admin admin.revoke alice ok',
    'certificate alice (flotilla-admin) cluster.add gamma denied',
    'admin flotilla-admin token.create reader ok',
    'token reader rollout.approve web denied',
    'token roller rollout.approve web ok',
    'token staging-roller rollout.approve web denied',
    'admin flotilla-admin token.revoke staging ok',
    'admin flotilla-admin cluster.add gamma ok',
    'admin flotilla-admin cluster.revoke gamma ok',
    'admin flotilla-admin admin.add bob ok',
    'admin bob admin.revoke nobody failed',
    'admin flotilla-admin admin.revoke flotilla-admin failed',
  ])
    assert.ok(seen.includes(want), `audit has "${want}"; it has:\n${seen.join('\n')}`);
  for (const e of entries) assert.equal(e.kind, 'audit');
  // Stored durably too, and never a secret.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(stored.length, entries.length);
  const text = JSON.stringify(stored);
  assert.ok(!text.includes(added.res?.token ?? 'missing'), 'no bootstrap token in the audit log');
  assert.doesNotMatch(text, /flt_[A-Za-z0-9_-]{43}/, 'no API token in the audit log');
  // A limited token does not read the audit log.
  const limited = await identity<{ token: string }>(root, (c, cb) =>
    c.CreateApiToken({ name: 'limited', scopes: [], selector: 'env=prod' }, cb),
  );
  const hidden = await https('/api/v1/history?kind=audit', { bearer: limited.res?.token ?? '' });
  assert.deepEqual((JSON.parse(hidden.body) as { entries: [] }).entries, []);
});
