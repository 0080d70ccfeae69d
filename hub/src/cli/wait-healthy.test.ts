// `flotilla wait --for revision=SHA --healthy` against the hub's real HTTP API
// (startHttpApi over a FleetStatus driven by agent events): it passes once every
// deployment reports Ready health about the content the commit brought, keeps waiting
// on Progressing and Degraded health, lists what lags on timeout, and without --healthy
// behaves as before.
import assert from 'node:assert/strict';
import test from 'node:test';
import type { BundleHealthState } from '@flotilla/common';
import { silentLogger } from '@flotilla/common';
import { startHttpApi } from '../api/http.js';
import type { RunningHttpApi } from '../api/http.js';
import { FleetStatus } from '../status/fleet-status.js';
import { appliedEvent, healthEvent } from '../status/testing.js';
import type { Fetch } from './hub-client.js';
import { runCli } from './main.js';
import { waitCommand } from './wait.js';
import { captureIo } from './testing.js';

const REV0 = '0000000fffffffffffffffffffffffffffffffff';
const REV1 = '1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const REV2 = '2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const REV3 = '3333333ccccccccccccccccccccccccccccccccc';
const at = (s: number) => new Date(Date.now() - 60_000 + s * 1000);

// Two connected clusters running bundles app and web at REV1 (content sha256:d1).
async function hub(): Promise<{ status: FleetStatus; api: RunningHttpApi; url: string }> {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  setCommit(status, REV1, 'sha256:d1');
  for (const c of ['edge-1', 'edge-2']) {
    status.connected(c, `s-${c}`, {
      cluster: c,
      agentVersion: '',
      appliedDigest: '',
      appliedRevision: '',
      protocolVersion: 1,
    });
    status.foldEvent(
      'applied',
      appliedEvent(c, REV1, 'sha256:d1', { app: 'sha256:a1', web: 'sha256:w1' }, at(1)),
    );
  }
  const api = await startHttpApi('127.0.0.1', 0, {
    status,
    sources: { sources: () => [] },
    readiness: { check: () => ({ ready: true, reasons: [] }) },
    logger: silentLogger(),
  });
  return { status, api, url: `http://127.0.0.1:${api.port}` };
}

function setCommit(status: FleetStatus, revision: string, digest: string): void {
  const bundles = [
    { name: 'app', digest: 'sha256:a1' },
    { name: 'web', digest: 'sha256:w1' },
  ];
  status.setFleet(
    ['edge-1', 'edge-2'].map((name) => ({
      name,
      labels: { env: 'prod' },
      desired: { revision, digest, bundles },
    })),
  );
}

function health(
  status: FleetStatus,
  cluster: string,
  bundle: string,
  state: BundleHealthState,
  s: number,
  reasons: string[] = [],
): void {
  const ev = healthEvent(cluster, bundle, state, at(s), {
    revision: REV1,
    digest: 'sha256:d1',
    reasons,
  });
  assert.equal(status.foldEvent('health-changed', ev), 'folded');
}

function allReady(status: FleetStatus, s: number): void {
  for (const c of ['edge-1', 'edge-2'])
    for (const b of ['app', 'web']) health(status, c, b, 'Ready', s);
}

// The real fetch, recording each path the command asks for.
function recording(seen: string[], onRequest: () => void = () => {}): Fetch {
  return (url, init) => {
    seen.push(new URL(url).pathname);
    onRequest();
    return fetch(url, init);
  };
}

const fast = ['--timeout', '400ms', '--interval', '50ms'];

test('wait-healthy-passes-when-every-deployment-is-healthy-at-the-commit', async () => {
  const { status, api, url } = await hub();
  try {
    allReady(status, 2);
    const t = captureIo();
    const seen: string[] = [];
    const args = ['--for', `revision=${REV1.slice(0, 7)}`, '--healthy', '-l', 'env=prod'];
    assert.equal(await waitCommand([...args, '--hub-url', url], t.cli, recording(seen)), 0);
    assert.equal(t.out.stdout, `2 cluster(s) Ready and healthy at 1111111 (4 deployment(s))\n`);
    assert.deepEqual(seen, ['/api/v1/clusters', '/api/v1/deployments']);
  } finally {
    await api.stop();
  }
});

test('wait-healthy-keeps-waiting-while-a-deployment-is-progressing', async () => {
  const { status, api, url } = await hub();
  try {
    allReady(status, 2);
    health(status, 'edge-2', 'web', 'Progressing', 3, ['apps/Deployment/web/web: 0 of 2 ready']);
    const seen: string[] = [];
    // The rollout finishes while the command polls: two looks see it Progressing.
    const hubFetch = recording(seen, () => {
      if (seen.filter((p) => p === '/api/v1/deployments').length === 3)
        health(status, 'edge-2', 'web', 'Ready', 4);
    });
    const t = captureIo();
    const args = ['--for', `revision=${REV1}`, '--healthy', '--interval', '50ms'];
    assert.equal(await waitCommand([...args, '--hub-url', url], t.cli, hubFetch), 0);
    assert.ok(seen.filter((p) => p === '/api/v1/deployments').length >= 3, seen.join(' '));
    // One clusters query and at most one deployments query per poll.
    const polls = seen.filter((p) => p === '/api/v1/clusters').length;
    assert.equal(seen.length, polls * 2);
    assert.match(t.out.stdout, /Ready and healthy at/);
  } finally {
    await api.stop();
  }
});

test('wait-healthy-times-out-listing-each-unhealthy-deployment-with-its-reason', async () => {
  const { status, api, url } = await hub();
  try {
    health(status, 'edge-1', 'app', 'Degraded', 3, [
      'apps/Deployment/apps/app: progress deadline exceeded',
      'apps/Deployment/apps/worker: 0 of 1 replicas available',
    ]);
    health(status, 'edge-1', 'web', 'Ready', 3);
    health(status, 'edge-2', 'web', 'Progressing', 3, ['apps/Deployment/apps/web: 1 of 2']);
    // edge-2/app last reported health about the content before REV1.
    const before = healthEvent('edge-2', 'app', 'Ready', at(0), {
      revision: REV0,
      digest: 'sha256:d0',
    });
    assert.equal(status.foldEvent('health-changed', before), 'folded');
    const t = captureIo();
    const args = ['--for', `revision=${REV1}`, '--healthy', ...fast, '--hub-url', url];
    assert.equal(await waitCommand(args, t.cli), 1);
    assert.equal(
      t.out.stderr,
      `timed out after 400ms waiting for revision ${REV1} to be healthy; not there yet:
  app on edge-1: Degraded (apps/Deployment/apps/app: progress deadline exceeded)
  app on edge-2: Ready at 0000000fffff, not reported at this content yet
  web on edge-2: Progressing (apps/Deployment/apps/web: 1 of 2)
`,
    );
    // Without --healthy the same fleet is there: health is not asked for.
    const seen: string[] = [];
    const plain = captureIo();
    const plainArgs = ['--for', `revision=${REV1}`, '--hub-url', url];
    assert.equal(await waitCommand(plainArgs, plain.cli, recording(seen)), 0);
    assert.equal(plain.out.stdout, `2 cluster(s) Ready at ${REV1}\n`);
    assert.deepEqual(seen, ['/api/v1/clusters']);
  } finally {
    await api.stop();
  }
});

test('wait-healthy-passes-for-a-commit-that-changed-nothing-on-a-cluster', async () => {
  const { status, api, url } = await hub();
  try {
    allReady(status, 2);
    // REV2 renders the same content: the agents apply nothing and send no new health.
    setCommit(status, REV2, 'sha256:d1');
    const t = captureIo();
    const args = ['--for', `revision=${REV2}`, '--healthy', ...fast, '--hub-url', url];
    assert.equal(await waitCommand(args, t.cli), 0, t.out.stderr);
    assert.equal(t.out.stdout, `2 cluster(s) Ready and healthy at ${REV2} (4 deployment(s))\n`);
    // REV3 changes the content: the REV1 health no longer counts, even when Ready.
    setCommit(status, REV3, 'sha256:d3');
    for (const c of ['edge-1', 'edge-2'])
      status.foldEvent(
        'applied',
        appliedEvent(c, REV3, 'sha256:d3', { app: 'sha256:a1', web: 'sha256:w1' }, at(10)),
      );
    const late = captureIo();
    const lateArgs = ['--for', `revision=${REV3}`, '--healthy', ...fast, '--hub-url', url];
    assert.equal(await waitCommand(lateArgs, late.cli), 1);
    assert.match(late.out.stderr, /app on edge-1: Ready at 1111111aaaaa, not reported at this/);
  } finally {
    await api.stop();
  }
});

test('wait-healthy-exit-codes-are-0-1-and-2', async () => {
  const { status, api, url } = await hub();
  try {
    const run = async (...argv: string[]) => {
      const t = captureIo();
      return { code: await runCli(['wait', ...argv, '--hub-url', url], t.cli), out: t.out };
    };
    const timedOut = await run('--for', `revision=${REV1}`, '--healthy', ...fast);
    assert.equal(timedOut.code, 1);
    assert.match(timedOut.out.stderr, /app on edge-1: no health reported yet/);
    allReady(status, 2);
    assert.equal((await run('--for', `revision=${REV1}`, '--healthy')).code, 0);
    const bad = await run('--for', 'healthy', '--healthy');
    assert.equal(bad.code, 2);
    assert.match(bad.out.stderr, /--for: expected revision=SHA/);
    const extra = await run('--for', `revision=${REV1}`, '--healthy=yes');
    assert.equal(extra.code, 2);
  } finally {
    await api.stop();
  }
});
