// Golden tests of `flotilla get|describe|drift|wait` output, against a fake hub (our Fetch).
import assert from 'node:assert/strict';
import test from 'node:test';
import type { HistoryEntry } from '../history/history-log.js';
import type { BundleDeployment, BundleSummary } from '../status/deployments.js';
import type { ClusterStatus } from '../status/model.js';
import { describeCommand, driftCommand, getCommand } from './fleet.js';
import type { Fetch } from './hub-client.js';
import { waitCommand } from './wait.js';
import { captureIo } from './testing.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const REV = '3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39';

const DEPLOYMENTS: BundleDeployment[] = [
  {
    bundle: 'app',
    cluster: 'edge-1',
    state: 'Ready',
    reason: '',
    desiredDigest: 'sha256:a1',
    appliedDigest: 'sha256:a1aaaaaaaaaaaaaa',
    created: 2,
    configured: 1,
    unchanged: 3,
    deleted: 0,
    failed: 0,
    drifted: 0,
    driftEvents: 0,
    health: 'Healthy',
    healthReason: '',
    healthRevision: '',
    healthDigest: '',
    lastError: '',
    lastTransition: '2026-11-26T11:55:00Z',
  },
  {
    bundle: 'app',
    cluster: 'edge-2',
    state: 'Drifted',
    reason: '1 objects drifted',
    desiredDigest: 'sha256:a1',
    appliedDigest: 'sha256:a1aaaaaaaaaaaaaa',
    created: 0,
    configured: 0,
    unchanged: 6,
    deleted: 0,
    failed: 0,
    drifted: 1,
    driftEvents: 3,
    health: '',
    healthReason: '',
    healthRevision: '',
    healthDigest: '',
    lastError: '',
    lastTransition: '2026-11-26T09:00:00Z',
  },
];
const BUNDLES: BundleSummary[] = [
  {
    name: 'app',
    clusters: 2,
    states: {
      Ready: 1,
      Progressing: 0,
      Waiting: 0,
      Pending: 0,
      OutOfSync: 0,
      Drifted: 1,
      Degraded: 0,
      Failed: 0,
      Offline: 0,
    },
  },
  {
    name: 'monitoring',
    clusters: 1000,
    states: {
      Ready: 997,
      Progressing: 0,
      Waiting: 0,
      Pending: 0,
      OutOfSync: 0,
      Drifted: 0,
      Degraded: 0,
      Failed: 2,
      Offline: 1,
    },
  },
];
const CLUSTER: ClusterStatus & { deployments: BundleDeployment[] } = {
  name: 'edge-2',
  labels: { env: 'prod', region: 'eu' },
  connected: true,
  lastSeen: '2026-11-26T11:59:50Z',
  desiredRevision: REV,
  desiredDigest: 'sha256:d1',
  appliedRevision: REV,
  appliedDigest: 'sha256:d1',
  state: 'Ready',
  message: '',
  bundles: [],
  lastConverged: '2026-11-26T08:00:00Z',
  agentVersion: '1.4.0',
  lastConnected: '2026-11-26T11:00:00Z',
  lastDisconnected: '2026-11-26T10:59:58Z',
  lastDisconnectReason: 'stream error: connection reset',
  deployments: [DEPLOYMENTS[1] as BundleDeployment],
};
function sessionEntry(
  kind: 'connected' | 'disconnected',
  time: string,
  id: string,
  agentVersion: string,
  reason: string,
): HistoryEntry {
  return {
    id: `${id}.${kind}`,
    time,
    timeMs: Date.parse(time),
    cluster: 'edge-2',
    kind,
    revision: '',
    digest: '',
    result: '',
    message: '',
    bundles: [],
    bundleDigests: [],
    drift: [],
    session: { id, agentVersion, reason, hub: 'hub-a' },
  };
}
const SESSIONS: HistoryEntry[] = [
  sessionEntry('connected', '2026-11-26T11:00:00Z', '5e551052-aaaa', '1.4.0', ''),
  sessionEntry(
    'disconnected',
    '2026-11-26T10:59:58Z',
    '0ld5e55i0n',
    '1.3.9',
    'stream error: connection reset',
  ),
];
const DRIFT: HistoryEntry[] = [
  {
    id: 'e1',
    time: '2026-11-26T09:00:00Z',
    timeMs: Date.parse('2026-11-26T09:00:00Z'),
    cluster: 'edge-2',
    kind: 'drift-detected',
    revision: REV,
    digest: '',
    result: '',
    message: '',
    bundles: ['app'],
    bundleDigests: [],
    drift: [
      {
        bundle: 'app',
        kind: 'Deployment',
        namespace: 'apps',
        name: 'web',
        fields: ['/spec/replicas', '/spec/template/spec/containers/0/image'],
        changedBy: ['kubectl-edit'],
      },
    ],
  },
];

function fakeHub(routes: Record<string, unknown>, seen: string[] = []): Fetch {
  return async (url) => {
    const u = new URL(url);
    seen.push(u.pathname + u.search);
    const body = routes[u.pathname];
    const status = body === undefined ? 404 : 200;
    const text = JSON.stringify(
      body ?? {
        error: { code: 'NOT_FOUND', message: `cluster "${u.pathname.split('/').pop()}" not found` },
      },
    );
    return { ok: status === 200, status, text: async () => text };
  };
}

const GOLDEN_BUNDLES = `NAME         CLUSTERS   READY      NOT-READY
app          2          1/2        Drifted=1
monitoring   1000       997/1000   Failed=2,Offline=1
`;

const GOLDEN_DEPLOYMENTS_WIDE = `BUNDLE   CLUSTER   STATE     OBJECTS   DRIFTED   AGE   DIGEST         HEALTH    REASON
app      edge-1    Ready     6         0         5m    a1aaaaaaaaaa   Healthy
app      edge-2    Drifted   6         1         3h    a1aaaaaaaaaa   -         1 objects drifted
`;

const GOLDEN_DESCRIBE = `Name:              edge-2
Labels:            env=prod,region=eu
State:             Ready
Connected:         true
Last seen:         2026-11-26T11:59:50Z (10s ago)
Agent version:     1.4.0
Last connected:    2026-11-26T11:00:00Z (60m ago)
Last disconnected: 2026-11-26T10:59:58Z (60m ago): stream error: connection reset
Desired revision:  ${REV}
Applied revision:  ${REV}
Last converged:    2026-11-26T08:00:00Z (4h ago)
Bundles:
  BUNDLE   STATE     CREATED   CONFIGURED   UNCHANGED   FAILED   DRIFTED   HEALTH   REASON
  app      Drifted   0         0            6           0        1         -        1 objects drifted
Recent sessions:
  AGE   EVENT          SESSION    AGENT   REASON
  60m   connected      5e551052   1.4.0
  60m   disconnected   0ld5e55i   1.3.9   stream error: connection reset
`;

const GOLDEN_DRIFT = `AGE   CLUSTER   BUNDLE   EVENT      OBJECT                FIELDS                                                  CHANGED-BY
3h    edge-2    app      detected   Deployment/apps/web   /spec/replicas,/spec/template/spec/containers/0/image   kubectl-edit
`;

test('get-bundles-and-deployments-golden', async () => {
  const hub = fakeHub({
    '/api/v1/bundles': { bundles: BUNDLES },
    '/api/v1/deployments': { deployments: DEPLOYMENTS },
  });
  const a = captureIo();
  assert.equal(await getCommand(['bundles'], a.cli, hub, () => NOW), 0);
  assert.equal(a.out.stdout, GOLDEN_BUNDLES);
  const b = captureIo();
  assert.equal(await getCommand(['deployments', '-o', 'wide'], b.cli, hub, () => NOW), 0);
  assert.equal(b.out.stdout, GOLDEN_DEPLOYMENTS_WIDE);
  const c = captureIo();
  await getCommand(['deployments', '-o', 'json'], c.cli, hub, () => NOW);
  assert.deepEqual(JSON.parse(c.out.stdout), { deployments: DEPLOYMENTS });
});

test('deployments-wide-shows-the-chart-version-of-bundles-from-chart-repositories', async () => {
  const chart = {
    repo: 'https://charts.example.com',
    name: 'podinfo',
    version: '6.5.1',
    digest: `sha256:${'c'.repeat(64)}`,
  };
  const [first, second] = DEPLOYMENTS as [BundleDeployment, BundleDeployment];
  const hub = fakeHub({ '/api/v1/deployments': { deployments: [{ ...first, chart }, second] } });
  const io = captureIo();
  assert.equal(await getCommand(['deployments', '-o', 'wide'], io.cli, hub, () => NOW), 0);
  assert.equal(
    io.out.stdout,
    `BUNDLE   CLUSTER   STATE     OBJECTS   DRIFTED   AGE   DIGEST         HEALTH    CHART           REASON
app      edge-1    Ready     6         0         5m    a1aaaaaaaaaa   Healthy   podinfo 6.5.1
app      edge-2    Drifted   6         1         3h    a1aaaaaaaaaa   -         -               1 objects drifted
`,
  );
});

test('describe-cluster-and-drift-golden', async () => {
  const seen: string[] = [];
  const hub = fakeHub(
    {
      '/api/v1/clusters/edge-2': CLUSTER,
      '/api/v1/drift': { entries: DRIFT },
      '/api/v1/history': { entries: SESSIONS },
    },
    seen,
  );
  const a = captureIo();
  assert.equal(await describeCommand(['cluster', 'edge-2'], a.cli, hub, () => NOW), 0);
  assert.equal(a.out.stdout, GOLDEN_DESCRIBE);
  assert.equal(
    seen.at(-1),
    '/api/v1/history?cluster=edge-2&kind=connected%2Cdisconnected&limit=5',
    'describe asks the history for the recent sessions',
  );
  const older = fakeHub({ '/api/v1/clusters/edge-2': CLUSTER });
  const o = captureIo();
  assert.equal(await describeCommand(['cluster', 'edge-2'], o.cli, older, () => NOW), 0);
  assert.equal(
    o.out.stdout,
    GOLDEN_DESCRIBE.slice(0, GOLDEN_DESCRIBE.indexOf('Recent sessions:')),
    'a hub without session history: everything but that section',
  );
  const b = captureIo();
  assert.equal(await driftCommand(['--cluster', 'edge-2'], b.cli, hub, () => NOW), 0);
  assert.equal(b.out.stdout, GOLDEN_DRIFT);
  assert.equal(seen.at(-1), '/api/v1/drift?since=24h&cluster=edge-2');
  await assert.rejects(
    describeCommand(['cluster', 'nope'], captureIo().cli, hub),
    /404 NOT_FOUND: cluster "nope" not found/,
  );
  await assert.rejects(getCommand(['pods'], captureIo().cli, hub), /unknown resource "pods"/);
  await assert.rejects(getCommand(['clusters', '-l', 'env in ('], captureIo().cli, hub), /-l:/);
});

test('wait-succeeds-when-all-ready-and-times-out-listing-laggards', async () => {
  let clusters: Partial<ClusterStatus>[] = [
    { name: 'edge-1', state: 'Ready', appliedRevision: REV, message: '' },
    {
      name: 'edge-2',
      state: 'Progressing',
      appliedRevision: '0123456789abcdef',
      message: 'applying',
    },
  ];
  const hub: Fetch = async () => ({
    ok: true,
    status: 200,
    text: async () => JSON.stringify({ clusters }),
  });
  const late = captureIo();
  assert.equal(
    await waitCommand(
      ['--for', `revision=${REV.slice(0, 7)}`, '--timeout', '200ms', '--interval', '50ms'],
      late.cli,
      hub,
    ),
    1,
  );
  assert.equal(
    late.out.stderr,
    `timed out after 200ms waiting for revision ${REV.slice(0, 7)}; not there yet:\n  edge-2: Progressing at 0123456789ab (applying)\n`,
  );
  clusters = clusters.map((c) => ({ ...c, state: 'Ready', appliedRevision: REV }));
  const ok = captureIo();
  assert.equal(await waitCommand(['--for', `revision=${REV}`, '--timeout', '1s'], ok.cli, hub), 0);
  assert.equal(ok.out.stdout, `2 cluster(s) Ready at ${REV}\n`);
  await assert.rejects(
    waitCommand(['--for', 'revision=xyz'], captureIo().cli, hub),
    /--for: expected revision=SHA/,
  );
});
