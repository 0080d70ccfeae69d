import assert from 'node:assert/strict';
import test from 'node:test';
import type { ClusterStatus } from '../status/model.js';
import { formatClusters } from './format.js';
import {
  STATUS_FAILURE_GROUPS,
  formatApplyFailures,
  formatRenderFailures,
} from './source-format.js';
import type { CliIo } from './io.js';
import { runCli } from './main.js';
import { statusCommand } from './status.js';
import type { Fetch } from './status.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');

const CLUSTERS: ClusterStatus[] = [
  {
    name: 'edge-1',
    labels: { env: 'prod', region: 'eu' },
    connected: true,
    lastSeen: '2026-11-26T11:59:55Z',
    desiredRevision: '3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39',
    desiredDigest: 'sha256:aaaa',
    appliedRevision: '3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39',
    appliedDigest: 'sha256:aaaa',
    state: 'Ready',
    message: '',
    bundles: [],
  },
  {
    name: 'edge-long-name-2',
    labels: {},
    connected: false,
    lastSeen: '2026-11-26T09:00:00Z',
    desiredRevision: '3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39',
    desiredDigest: 'sha256:aaaa',
    appliedRevision: '0123456789abcdef0123456789abcdef01234567',
    appliedDigest: 'sha256:bbbb',
    state: 'Offline',
    message: 'no contact since 2026-11-26T09:00:00.000Z',
    bundles: [],
  },
  {
    name: 'new',
    labels: {},
    connected: false,
    lastSeen: null,
    desiredRevision: '',
    desiredDigest: '',
    appliedRevision: '',
    appliedDigest: '',
    state: 'Pending',
    message: 'agent has never connected',
    bundles: [],
  },
];

const GOLDEN_TABLE = `NAME               CONNECTED   STATE     DESIRED        APPLIED        LAST-SEEN
edge-1             true        Ready     3f2a9c1d8e7b   3f2a9c1d8e7b   5s
edge-long-name-2   false       Offline   3f2a9c1d8e7b   0123456789ab   3h
new                false       Pending   <none>         <none>         <never>
`;

const GOLDEN_WIDE = `NAME               CONNECTED   STATE     DESIRED        APPLIED        LAST-SEEN   LABELS               MESSAGE
edge-1             true        Ready     3f2a9c1d8e7b   3f2a9c1d8e7b   5s          env=prod,region=eu
edge-long-name-2   false       Offline   3f2a9c1d8e7b   0123456789ab   3h          <none>               no contact since 2026-11-26T09:00:00.000Z
new                false       Pending   <none>         <none>         <never>     <none>               agent has never connected
`;

test('status-table-matches-golden-output', () => {
  assert.equal(formatClusters(CLUSTERS, 'table', NOW), GOLDEN_TABLE);
  assert.equal(formatClusters(CLUSTERS, 'wide', NOW), GOLDEN_WIDE);
  assert.equal(formatClusters([], 'table', NOW), 'No clusters found.\n');
});

test('status-json-and-yaml-carry-full-revisions', () => {
  const json = JSON.parse(formatClusters(CLUSTERS, 'json', NOW)) as { clusters: ClusterStatus[] };
  assert.deepEqual(json.clusters, CLUSTERS);
  assert.match(
    formatClusters(CLUSTERS, 'yaml', NOW),
    /desiredRevision: 3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39/,
  );
});

function io(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const cli: CliIo = {
    stdout: { write: (t: string) => out.push(t) },
    stderr: { write: (t: string) => err.push(t) },
    env,
    cwd: '/',
  };
  return { cli, out: () => out.join(''), err: () => err.join('') };
}

test('status-command-queries-hub-url-from-env-with-selector', async () => {
  const urls: string[] = [];
  const fetchFn: Fetch = async (url) => {
    urls.push(url);
    return {
      ok: true,
      status: 200,
      text: async () => JSON.stringify({ clusters: CLUSTERS.slice(0, 1) }),
    };
  };
  const t = io({ FLOTILLA_HUB_URL: 'http://hub:9000/' });
  assert.equal(await statusCommand(['-l', 'env=prod'], t.cli, fetchFn, () => NOW), 0);
  assert.deepEqual(urls, [
    'http://hub:9000/api/v1/clusters?selector=env%3Dprod',
    'http://hub:9000/api/v1/hub',
  ]);
  assert.match(t.out(), /^NAME/);
});

test('status-says-first-what-the-hub-serves-without', async () => {
  const message =
    'Git source fleet unreachable since 2026-01-01T00:00:00.000Z: serving revision 0123456789ab saved before the restart';
  const fetchFn: Fetch = async (url) => ({
    ok: true,
    status: 200,
    text: async () =>
      JSON.stringify(
        url.endsWith('/api/v1/hub')
          ? { ready: true, reasons: [], degraded: [{ reason: 'git', source: 'fleet', message }] }
          : { clusters: CLUSTERS.slice(0, 1) },
      ),
  });
  const table = io({ FLOTILLA_HUB_URL: 'http://hub:9000' });
  assert.equal(await statusCommand([], table.cli, fetchFn, () => NOW), 0);
  assert.ok(table.out().startsWith(`HUB DEGRADED: ${message}\n\nNAME`), table.out());
  const json = io({ FLOTILLA_HUB_URL: 'http://hub:9000' });
  assert.equal(await statusCommand(['-o', 'json'], json.cli, fetchFn, () => NOW), 0);
  assert.equal((JSON.parse(json.out()) as { clusters: unknown[] }).clusters.length, 1);
  assert.equal(json.err(), `warning: hub degraded: ${message}\n`);
});

test('status-command-exit-codes-usage-2-error-1', async () => {
  const t = io();
  assert.equal(await runCli(['status', '-o', 'xml'], t.cli), 2);
  assert.match(t.err(), /unknown output format "xml"/);
  assert.equal(await runCli(['status', '--bogus'], io().cli), 2);
  assert.equal(await runCli(['frobnicate'], io().cli), 2);
  const down = io({ FLOTILLA_HUB_URL: 'http://127.0.0.1:1' });
  assert.equal(await runCli(['status'], down.cli), 1);
  assert.match(down.err(), /hub at http:\/\/127\.0\.0\.1:1 is unavailable/);
  const v = io();
  assert.equal(await runCli(['version'], v.cli), 0);
  assert.match(v.out(), /^flotilla \d+\.\d+\.\d+/);
});

test('status-command-reports-hub-error-body', async () => {
  const fetchFn: Fetch = async () => ({
    ok: false,
    status: 404,
    text: async () => '{"error":{"code":"NOT_FOUND","message":"cluster \\"x\\" not found"}}',
  });
  await assert.rejects(
    statusCommand(['x'], io().cli, fetchFn),
    /404 NOT_FOUND: cluster "x" not found/,
  );
});

test('status-lists-what-a-cluster-refused-to-apply-beside-what-failed-to-render', async () => {
  const counts = { created: 0, configured: 0, unchanged: 1, deleted: 0, failed: 0 };
  const refused =
    'ClusterRole/reports: clusterroles.rbac.authorization.k8s.io "reports" is forbidden: attempting to grant RBAC permissions not currently held:\n{APIGroups:["*"], Resources:["*"], Verbs:["*"]}';
  const rendered =
    'bundles/legacy/chart/Chart.yaml: helm failed (exit 1): Error: chart requires kubeVersion';
  const edge: ClusterStatus = {
    ...(CLUSTERS[0] as ClusterStatus),
    state: 'Failed',
    message: `bundle legacy: 3f2a9c1d8e7b failed to render: ${rendered}; and apply failed: ${refused}`,
    bundles: [
      { name: 'access', digest: 'sha256:a', ...counts, failed: 1 },
      { name: 'web', digest: 'sha256:w', ...counts },
    ],
    renderFailures: [
      {
        bundle: 'legacy',
        revision: '3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39',
        message: rendered,
        servingRevision: '',
      },
    ],
    applyFailure: refused,
  };
  const fetchFn: Fetch = async (url) => ({
    ok: true,
    status: 200,
    text: async () =>
      JSON.stringify(url.endsWith('/api/v1/hub') ? { ready: true } : { clusters: [edge] }),
  });
  const t = io({ FLOTILLA_HUB_URL: 'http://hub:9000' });
  assert.equal(await statusCommand([], t.cli, fetchFn, () => NOW), 0);
  const out = t.out();
  assert.match(
    out,
    /Failed to render[^\n]*\n {2}bundle legacy on edge-1: 3f2a9c1d8e7b failed to render/,
  );
  assert.match(
    out,
    /\nFailed to apply[^\n]*\n {2}bundle access on edge-1: ClusterRole\/reports: .*not currently held: \{APIGroups:\["\*"\], Resources:\["\*"\], Verbs:\["\*"\]\}\n$/,
  );
});

test('failure-sections-group-clusters-by-reason-and-say-how-many-more-past-the-limit', () => {
  const counts = { created: 0, configured: 0, unchanged: 0, deleted: 0, failed: 1 };
  const cluster = (name: string, reason: string): ClusterStatus => ({
    ...(CLUSTERS[0] as ClusterStatus),
    name,
    state: 'Failed',
    bundles: [{ name: 'web', digest: 'sha256:w', ...counts }],
    renderFailures: [{ bundle: 'web', revision: 'r1', message: reason, servingRevision: '' }],
    applyFailure: reason,
  });
  // Two clusters share a reason; then one reason per cluster past the limit.
  const clusters = [
    cluster('a', 'same reason'),
    cluster('b', 'same reason'),
    ...Array.from({ length: STATUS_FAILURE_GROUPS + 2 }, (_, i) => cluster(`c${i}`, `reason ${i}`)),
  ];
  for (const [section, title] of [
    [formatRenderFailures(clusters), 'Failed to render'],
    [formatApplyFailures(clusters), 'Failed to apply'],
  ] as const) {
    const lines = section.trim().split('\n');
    assert.match(lines[0] ?? '', new RegExp(`^${title}`));
    assert.match(lines[1] ?? '', /^ {2}bundle web on a,b: /, 'one line for both clusters');
    assert.equal(lines.length, 1 + STATUS_FAILURE_GROUPS + 1);
    assert.match(lines.at(-1) ?? '', /^ {2}… and 3 more/, `${title}: 23 groups, 20 shown`);
  }
  assert.equal(formatRenderFailures([CLUSTERS[0] as ClusterStatus]), '');
  assert.equal(formatApplyFailures([CLUSTERS[0] as ClusterStatus]), '');
});
