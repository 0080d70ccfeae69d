// Who may read fleet status, over real TLS: a real identity authority (CA, admin and
// cluster certificates, API tokens), the gRPC FleetService and the HTTPS API as the hub
// serves them. A cluster's certificate must not read the fleet; no credentials must not either.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Metadata, credentials, status as GrpcStatus } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { silentLogger } from '@flotilla/common';
import type { FleetServiceClient } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { IdentityAuthority } from '../identity/authority.js';
import { createCsr, generateKeyPem } from '../identity/pki.js';
import { FleetStatus } from '../status/fleet-status.js';
import { startGrpcServer } from '../stream/grpc-server.js';
import type { RunningGrpcServer } from '../stream/grpc-server.js';
import { ReadAccess } from './access.js';
import { fleetServiceHandlers } from './grpc-fleet.js';
import type { RolloutsApi } from './types.js';
import { newRollout } from '../rollout/machine.js';
import { twoStages } from '../rollout/testing.js';
import { rolloutView } from '../rollout/view.js';
import { startHttpApi } from './http.js';
import type { RunningHttpApi } from './http.js';

interface Pair {
  certPem: string;
  keyPem: string;
}

let dir = '';
let authority: IdentityAuthority;
let grpcServer: RunningGrpcServer;
let http: RunningHttpApi;
let admin: Pair;
let alpha: Pair;
let token = '';
/** Rollout actions the fake rollouts API was asked for: "bundle action by". */
const acted: string[] = [];
const rollouts: RolloutsApi = {
  list: () => [],
  get: () => undefined,
  act: async (bundle, action, by) => {
    acted.push(`${bundle} ${action} ${by}`);
    const r = newRollout(`${bundle}@abcdef123456-1`, bundle, 'abcdef1234567890', twoStages(), 1);
    return rolloutView(r, 1);
  },
};

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'flotilla-access-test-'));
  authority = new IdentityAuthority({
    stateDir: dir,
    hosts: ['127.0.0.1'],
    logger: silentLogger(),
  });
  await authority.start();
  admin = {
    certPem: await readFile(join(dir, 'admin.crt'), 'utf8'),
    keyPem: await readFile(join(dir, 'admin.key'), 'utf8'),
  };
  const { token: bootstrap } = await authority.addCluster('alpha', {});
  const keyPem = generateKeyPem();
  alpha = {
    certPem: (await authority.register('alpha', bootstrap, createCsr(keyPem, 'alpha'))).certPem,
    keyPem,
  };
  token = (await authority.apiTokens.create('ci')).token;
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const desired = { revision: 'r1', digest: 'sha256:d1', bundles: [] };
  status.setFleet([
    { name: 'alpha', labels: {}, desired },
    { name: 'beta', labels: {}, desired },
  ]);
  const access = new ReadAccess(authority, silentLogger());
  const tls = { caPem: authority.caPem, ...authority.servingPair };
  grpcServer = await startGrpcServer(
    '127.0.0.1:0',
    {
      agentStream: { Connect: (call) => call.end() },
      fleet: fleetServiceHandlers(status, undefined, access, rollouts),
    },
    tls,
  );
  http = await startHttpApi(
    '127.0.0.1',
    0,
    {
      status,
      sources: { sources: () => [] },
      readiness: { check: () => ({ ready: true, reasons: [] }) },
      logger: silentLogger(),
      access,
      rollouts,
    },
    tls,
  );
});

after(async () => {
  await grpcServer?.stop(0);
  await http?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** ListClusters over gRPC with the given client certificate and bearer token. */
function grpcList(
  client?: Pair,
  bearer?: string,
): Promise<{ code: number; details: string; names: string[] }> {
  const ca = Buffer.from(authority.caPem);
  const creds = client
    ? credentials.createSsl(ca, Buffer.from(client.keyPem), Buffer.from(client.certPem))
    : credentials.createSsl(ca);
  const c = new (loadFlotillaProto().FleetService)(
    `127.0.0.1:${grpcServer.port}`,
    creds,
  ) as FleetServiceClient;
  const md = new Metadata();
  if (bearer) md.set('authorization', `Bearer ${bearer}`);
  return new Promise((resolve) =>
    c.ListClusters({}, md, (err: ServiceError | null, res) => {
      c.close();
      resolve({
        code: err ? err.code : GrpcStatus.OK,
        details: err?.details ?? '',
        names: (res?.clusters ?? []).map((x) => x.name),
      });
    }),
  );
}

/** Opens FleetService/Watch; resolves its status code and how many events came before it ended or 1 s passed. */
function grpcWatch(client?: Pair, bearer?: string): Promise<{ code: number; received: number }> {
  const ca = Buffer.from(authority.caPem);
  const creds = client
    ? credentials.createSsl(ca, Buffer.from(client.keyPem), Buffer.from(client.certPem))
    : credentials.createSsl(ca);
  const c = new (loadFlotillaProto().FleetService)(
    `127.0.0.1:${grpcServer.port}`,
    creds,
  ) as FleetServiceClient;
  const md = new Metadata();
  if (bearer) md.set('authorization', `Bearer ${bearer}`);
  const call = c.Watch({}, md);
  let received = 0;
  return new Promise((resolve) => {
    const done = (code: number): void => {
      clearTimeout(timer);
      call.cancel();
      c.close();
      resolve({ code, received });
    };
    const timer = setTimeout(() => done(GrpcStatus.OK), 1_000);
    call.on('data', () => (received += 1));
    call.on('error', (err: ServiceError) => done(err.code));
  });
}

/** RolloutAction over gRPC with the given client certificate and bearer token. */
function grpcAct(client?: Pair, bearer?: string): Promise<{ code: number; details: string }> {
  const ca = Buffer.from(authority.caPem);
  const creds = client
    ? credentials.createSsl(ca, Buffer.from(client.keyPem), Buffer.from(client.certPem))
    : credentials.createSsl(ca);
  const c = new (loadFlotillaProto().FleetService)(
    `127.0.0.1:${grpcServer.port}`,
    creds,
  ) as FleetServiceClient;
  const md = new Metadata();
  if (bearer) md.set('authorization', `Bearer ${bearer}`);
  return new Promise((resolve) =>
    c.RolloutAction({ bundle: 'web', action: 'approve' }, md, (err: ServiceError | null) => {
      c.close();
      resolve({ code: err ? err.code : GrpcStatus.OK, details: err?.details ?? '' });
    }),
  );
}

/** GETs (or POSTs to) a path over HTTPS with the given client certificate and bearer token. */
function httpsGet(
  path: string,
  client?: Pair,
  bearer?: string,
  method = 'GET',
): Promise<{ status: number; body: string; wwwAuthenticate: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `https://127.0.0.1:${http.port}${path}`,
      {
        method,
        ca: authority.caPem,
        ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
        ...(bearer ? { headers: { authorization: `Bearer ${bearer}` } } : {}),
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString('utf8')));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body,
            wwwAuthenticate: String(res.headers['www-authenticate'] ?? ''),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('grpc-fleet-read-needs-an-admin-certificate-or-an-api-token', async () => {
  const agent = await grpcList(alpha);
  assert.equal(agent.code, GrpcStatus.PERMISSION_DENIED);
  assert.equal(agent.details, 'cluster certificates may not read fleet status');
  const none = await grpcList();
  assert.equal(none.code, GrpcStatus.UNAUTHENTICATED);
  assert.match(none.details, /needs credentials/);
  assert.deepEqual((await grpcList(admin)).names, ['alpha', 'beta']);
  assert.deepEqual((await grpcList(undefined, token)).names, ['alpha', 'beta']);
  const watch = await grpcWatch(alpha);
  assert.equal(watch.code, GrpcStatus.PERMISSION_DENIED, 'the stream is guarded too');
  assert.equal(watch.received, 0);
  assert.equal((await grpcWatch(undefined, token)).received, 2, 'a snapshot per cluster');
  const forged = await grpcList(undefined, `flt_${'A'.repeat(43)}`);
  assert.equal(forged.code, GrpcStatus.UNAUTHENTICATED);
  assert.doesNotMatch(forged.details, /AAAA/);
});

test('http-reads-need-credentials-and-health-metrics-and-page-stay-open', async () => {
  const none = await httpsGet('/api/v1/clusters');
  assert.equal(none.status, 401);
  assert.match(none.wwwAuthenticate, /^Bearer/);
  assert.equal(JSON.parse(none.body).error.code, 'UNAUTHENTICATED');
  const agent = await httpsGet('/api/v1/clusters', alpha);
  assert.equal(agent.status, 403);
  assert.deepEqual(JSON.parse(agent.body).error, {
    code: 'PERMISSION_DENIED',
    message: 'cluster certificates may not read fleet status',
  });
  assert.equal((await httpsGet('/api/v1/watch', alpha)).status, 403);
  const byAdmin = await httpsGet('/api/v1/clusters', admin);
  assert.equal(byAdmin.status, 200);
  assert.equal(JSON.parse(byAdmin.body).clusters.length, 2);
  assert.equal((await httpsGet('/api/v1/clusters/beta', undefined, token)).status, 200);
  const bad = await httpsGet('/api/v1/bundles', undefined, 'not-a-token');
  assert.equal(bad.status, 401);
  assert.doesNotMatch(bad.body, /not-a-token/);
  for (const open of ['/healthz', '/readyz', '/'])
    assert.equal((await httpsGet(open)).status, 200, open);
});

test('a-revoked-token-is-refused-at-once-over-https-and-grpc', async () => {
  const { token: short } = await authority.apiTokens.create('dashboard');
  assert.equal((await httpsGet('/api/v1/clusters', undefined, short)).status, 200);
  assert.equal((await grpcList(undefined, short)).code, GrpcStatus.OK);
  await authority.apiTokens.revoke('dashboard');
  const http401 = await httpsGet('/api/v1/clusters', undefined, short);
  assert.equal(http401.status, 401);
  assert.equal(JSON.parse(http401.body).error.message, 'the API token has been revoked');
  const grpc = await grpcList(undefined, short);
  assert.equal(grpc.code, GrpcStatus.UNAUTHENTICATED);
  assert.equal(grpc.details, 'the API token has been revoked');
  // The other token is untouched.
  assert.equal((await grpcList(undefined, token)).code, GrpcStatus.OK);
});

test('rollout-actions-need-the-admin-certificate-or-a-write-token', async () => {
  acted.length = 0;
  const { token: writer } = await authority.apiTokens.create('release-bot', 0, ['write']);
  const post = (client?: Pair, bearer?: string) =>
    httpsGet('/api/v1/rollouts/web/approve', client, bearer, 'POST');
  const readOnly = await post(undefined, token);
  assert.equal(readOnly.status, 403);
  assert.match(
    JSON.parse(readOnly.body).error.message,
    /API token "ci" may only read: rollout actions need an administrator certificate or a token created with --scope rollout/,
  );
  assert.equal((await post(alpha)).status, 403, 'a cluster certificate may not act');
  assert.equal((await post()).status, 401);
  assert.equal((await post(undefined, writer)).status, 200);
  assert.equal((await post(admin)).status, 200);
  const grpcRead = await grpcAct(undefined, token);
  assert.equal(grpcRead.code, GrpcStatus.PERMISSION_DENIED);
  assert.equal((await grpcAct(undefined, writer)).code, GrpcStatus.OK);
  assert.deepEqual(acted, [
    'web approve token release-bot',
    'web approve flotilla-admin',
    'web approve token release-bot',
  ]);
  // Reads of rollouts stay open to read-only tokens.
  assert.equal((await httpsGet('/api/v1/rollouts', undefined, token)).status, 200);
});
