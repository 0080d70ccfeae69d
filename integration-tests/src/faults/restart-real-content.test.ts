// A hub restarted while Git is down keeps serving real-world content exactly as before and
// keeps its status honest: a real installation (hub and agent processes on the credentials
// the installer generates, a Kubernetes API server, nats-server, a smart-HTTP Git server).
// The fleet runs a chart shaped like public charts, rendered for the cluster's reported
// capabilities (a ServiceMonitor because its CRD is served there, policy/v1 and
// autoscaling/v2 chosen from .Capabilities), a ConfigMap holding a shell script, and a
// bundle that fails to render. After a SIGKILL and a start without Git, the hub must serve
// the saved per-cluster rendering (nothing re-applied, the ServiceMonitor not pruned by a
// rendering made for default capabilities) and still say the broken bundle failed, with
// its file and line, in `status`, `get deployments` and `wait`; once Git is back the
// re-render at the same commit changes nothing on the cluster.
//
// Health comes from the Deployment's status subresource, written by the test as the
// Deployment controller would (the test API server runs no controllers).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { CHART, SERVICE_MONITOR_CRD, rollOutShop } from '../e2e/shop-chart.js';
import { applyManifests } from '../system/install.js';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const CLUSTER = 'shop-eu';
const skip = await requireEnv(['cluster', 'nats', 'git']);
// The agent re-reads its cluster's capabilities every second (default 60 s).
process.env.FLOTILLA_CAPABILITIES_INTERVAL = '1s';

const SCRIPT = [
  '#!/bin/sh',
  'set -eu',
  'echo "rotating logs of ${APP:-shop} in ${LOG_DIR}" >&2',
  'find "${LOG_DIR}" -name "*.log" -mtime +7 -delete',
  '',
].join('\n');
// Line 6 is the bad one: a mapping nested in a compact mapping.
const BROKEN_YAML =
  'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b: c\n';
const BROKEN_AT = /bundles\/broken\/manifests\/cm\.yaml:6: /;

const plainBundle = (name: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: ${name}\nspec:\n  source:\n    path: manifests\n  namespace: ${name}\n  targets:\n    - clusterSelector: {}\n`;
const namespace = (name: string): string =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;

const repoFiles: Record<string, string> = {
  [`clusters/${CLUSTER}.yaml`]: `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${CLUSTER}\n  labels: { app: shop }\n`,
  'bundles/base/bundle.yaml':
    'apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata: { name: base }\nspec:\n  targets: [ { clusterSelector: {} } ]\n',
  'bundles/base/manifests/namespace.yaml': namespace('shop'),
  'bundles/shop/bundle.yaml': `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata: { name: shop }
spec:
  source:
    helm: { chart: chart, releaseName: web }
  namespace: shop
  dependsOn: [ base ]
  targets: [ { clusterSelector: { matchLabels: { app: shop } } } ]
`,
  ...Object.fromEntries(Object.entries(CHART).map(([p, t]) => [`bundles/shop/chart/${p}`, t])),
  'bundles/ops/bundle.yaml': plainBundle('ops'),
  'bundles/ops/manifests/namespace.yaml': namespace('ops'),
  'bundles/ops/manifests/scripts.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: scripts\ndata:\n  rotate.sh: |\n${SCRIPT.split(
    '\n',
  )
    .map((l) => (l === '' ? '' : `    ${l}`))
    .join('\n')}`,
  'bundles/broken/bundle.yaml': plainBundle('broken'),
  'bundles/broken/manifests/namespace.yaml': namespace('broken'),
  'bundles/broken/manifests/cm.yaml': BROKEN_YAML,
};

type Deployment = { bundle: string; cluster: string; state: string; reason: string };

let fleet: Fleet | undefined;

before(async () => {
  if (skip) return;
  fleet = await startFleet({ clusters: [CLUSTER], repoFiles });
});

after(async () => {
  await fleet?.stop();
});

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(fleet!.clusters.get(CLUSTER)!.kubeconfigPath);
  return kc;
}

async function serviceMonitorUid(): Promise<string | undefined> {
  try {
    const o = await KubernetesObjectApi.makeApiClient(kubeConfig()).read({
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'ServiceMonitor',
      metadata: { name: 'web-shop', namespace: 'shop' },
    });
    return o.metadata?.uid;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

async function deployments(f: Fleet): Promise<Deployment[]> {
  return (
    JSON.parse(await f.cli(['get', 'deployments', '-o', 'json'])) as { deployments: Deployment[] }
  ).deployments;
}

/** How often the agent's log says `message` so far. */
async function agentSaid(f: Fleet, message: string): Promise<number> {
  const log = await readFile(f.agents.get(CLUSTER)!.logFile, 'utf8');
  return log.split('\n').filter((l) => l.includes(`"msg":"${message}"`)).length;
}

/** The shop, ops and broken bundles as `get deployments` and `status` show them, checked. */
async function assertHonestStatus(f: Fleet, what: string): Promise<void> {
  const short = f.firstCommit.slice(0, 12);
  const rows = await waitFor(
    async () => {
      const d = await deployments(f);
      const state = (b: string) => d.find((x) => x.bundle === b)?.state;
      return state('shop') === 'Ready' && state('ops') === 'Ready' && state('broken') === 'Failed'
        ? d
        : undefined;
    },
    {
      what: `${what}: shop and ops Ready, broken Failed (logs in ${f.logDir})`,
      timeoutMs: 120_000,
    },
  );
  const broken = rows.find((x) => x.bundle === 'broken')!;
  assert.ok(broken.reason.startsWith(`${short} failed to render: `), broken.reason);
  assert.match(broken.reason, BROKEN_AT);
  const status = await f.cli(['status']);
  assert.match(status, new RegExp(`^${CLUSTER}\\s+true\\s+Failed\\s`, 'm'), `${what}: ${status}`);
  await assert.rejects(
    f.cli(['wait', '--for', `revision=${f.firstCommit}`, '--timeout', '10m']),
    (err: Error) => {
      assert.match(err.message, /revision \w+ failed to render; it cannot reach these clusters/);
      assert.match(err.message, new RegExp(`${CLUSTER}: bundle broken: .*cm\\.yaml:6: `));
      return true;
    },
    `${what}: flotilla wait gives up at once with the reason`,
  );
}

test(
  'a-hub-restarted-while-git-is-down-keeps-the-capability-rendered-chart-and-the-broken-bundle-failed',
  { skip, timeout: 420_000 },
  async () => {
    const f = fleet!;
    // The cluster runs the Prometheus operator's CRDs: the chart renders a ServiceMonitor.
    await applyManifests(f.clusters.get(CLUSTER)!.kubeconfigPath, SERVICE_MONITOR_CRD);
    const uid = await waitFor(serviceMonitorUid, {
      what: `the ServiceMonitor on ${CLUSTER} (logs in ${f.logDir})`,
      timeoutMs: 120_000,
      intervalMs: 250,
    });
    await waitFor(
      () =>
        rollOutShop(f.clusters.get(CLUSTER)!.kubeconfigPath).then(
          () => true,
          (err: unknown) => {
            // Not there yet: the agent has not applied the chart's Deployment.
            if ((err as { code?: number }).code === 404) return false;
            throw err;
          },
        ),
      { what: 'the chart Deployment rolled out', timeoutMs: 60_000 },
    );
    await assertHonestStatus(f, 'before the restart');
    const core = kubeConfig().makeApiClient(CoreV1Api);
    assert.equal(
      (await core.readNamespacedConfigMap({ name: 'scripts', namespace: 'ops' })).data?.[
        'rotate.sh'
      ],
      SCRIPT,
      'the shell script reached the cluster byte for byte',
    );

    const applies = await agentSaid(f, 'apply finished');
    const upToDate = await agentSaid(f, 'desired state up to date');
    await f.git.pause();
    try {
      await f.restartHub({ kill: true });
      await waitFor(async () => (await agentSaid(f, 'desired state up to date')) > upToDate, {
        what: `${CLUSTER} told it is up to date by the restarted hub (logs in ${f.logDir})`,
        timeoutMs: 90_000,
      });
      await assertHonestStatus(f, 'after the restart, Git down');
      assert.match(await f.cli(['status']), /HUB DEGRADED: Git source fleet/);
    } finally {
      await f.git.resume();
    }
    // Git is back: the hub fetches and renders the same commit again, with the cluster's
    // reported capabilities; the rendering is the one the cluster already runs.
    await waitFor(async () => !/HUB DEGRADED/.test(await f.cli(['status'])), {
      what: 'Git no longer degraded once it answers',
      timeoutMs: 90_000,
    });
    await assertHonestStatus(f, 'after Git came back');
    assert.equal(await agentSaid(f, 'apply finished'), applies, 'nothing was applied again');
    assert.equal(
      await serviceMonitorUid(),
      uid,
      'the ServiceMonitor was never pruned or recreated',
    );
  },
);
