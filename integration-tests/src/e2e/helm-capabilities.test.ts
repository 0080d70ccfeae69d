// Helm charts rendered for each cluster's real capabilities, end to end: two real
// kube-apiservers with real agents, NATS, Git, the hub and the pinned helm. The chart is
// shaped like public charts: it declares kubeVersion ">=1.23.0-0" (which helm built from
// source refuses unless told the cluster's version), picks API versions from
// .Capabilities (policy/v1 PodDisruptionBudget by a resource-level entry, autoscaling/v2 HPA
// by version), has RBAC and a helper template, and renders a ServiceMonitor only where
// monitoring.coreos.com/v1 is served. The ServiceMonitor CRD is installed on one cluster
// first and on the other later, outside Flotilla, as a platform team would.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { KubeConfig, KubernetesObjectApi } from '@kubernetes/client-node';
import type { KubernetesObject } from '@kubernetes/client-node';
import { K8S_VERSION, binaryPaths, requireEnv, waitFor } from '@flotilla/test-env';
import { applyManifests, parseManifests } from '../system/install.js';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';
import { CHART, SERVICE_MONITOR_CRD, rollOutShop } from './shop-chart.js';

const skip = await requireEnv(['cluster', 'nats', 'git']);
// Agents started below re-read their cluster's capabilities every second (default 60 s),
// and `flotilla render` (run through fleet.cli) uses the test environment's helm.
process.env.FLOTILLA_CAPABILITIES_INTERVAL = '1s';
process.env.FLOTILLA_HELM = binaryPaths().helm;

const cluster = (name: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${name}\n  labels: { app: shop }\n`;

const repoFiles: Record<string, string> = {
  'clusters/shop-eu.yaml': cluster('shop-eu'),
  'clusters/shop-us.yaml': cluster('shop-us'),
  'bundles/base/bundle.yaml': `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata: { name: base }
spec:
  targets: [ { clusterSelector: {} } ]
`,
  'bundles/base/manifests/namespace.yaml':
    'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n',
  'bundles/shop/bundle.yaml': `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata: { name: shop }
spec:
  source:
    helm: { chart: chart, releaseName: web }
  namespace: shop
  targets: [ { clusterSelector: { matchLabels: { app: shop } } } ]
`,
  ...Object.fromEntries(Object.entries(CHART).map(([p, t]) => [`bundles/shop/chart/${p}`, t])),
};

let fleet: Fleet | undefined;

before(async () => {
  if (skip) return;
  fleet = await startFleet({ clusters: ['shop-eu', 'shop-us'], repoFiles });
});

after(async () => {
  await fleet?.stop();
});

function objects(name: string): KubernetesObjectApi {
  const kc = new KubeConfig();
  kc.loadFromFile(fleet!.clusters.get(name)!.kubeconfigPath);
  return KubernetesObjectApi.makeApiClient(kc);
}

async function read(
  clusterName: string,
  apiVersion: string,
  kind: string,
  name: string,
): Promise<KubernetesObject | undefined> {
  try {
    return await objects(clusterName).read({
      apiVersion,
      kind,
      metadata: { name, namespace: 'shop' },
    });
  } catch (err) {
    const code = (err as { code?: number }).code;
    // 404: no such object, or (for ServiceMonitor) no such kind on this cluster yet.
    if (code === 404) return undefined;
    throw err;
  }
}

const kindsOf = (yamlStream: string): string[] =>
  parseManifests(yamlStream)
    .map((o) => `${o.apiVersion} ${o.kind}`)
    .sort();

test(
  'a-chart-needing-kubernetes-1.23-deploys-on-both-clusters-with-a-servicemonitor-only-where-its-crd-is-served',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    // shop-eu runs the Prometheus operator's CRDs already; shop-us does not (yet).
    await applyManifests(f.clusters.get('shop-eu')!.kubeconfigPath, SERVICE_MONITOR_CRD);

    const wait = { timeoutMs: 120_000, intervalMs: 250 };
    await waitFor(
      async () =>
        (await read('shop-eu', 'monitoring.coreos.com/v1', 'ServiceMonitor', 'web-shop')) !==
        undefined,
      {
        ...wait,
        what: `the ServiceMonitor on shop-eu (logs in ${f.logDir})`,
      },
    );
    for (const name of ['shop-eu', 'shop-us']) {
      await waitFor(
        async () => (await read(name, 'apps/v1', 'Deployment', 'web-shop')) !== undefined,
        {
          ...wait,
          what: `the chart's Deployment on ${name} (logs in ${f.logDir})`,
        },
      );
      // Chosen by .Capabilities: the resource-level entry, and the cluster's version. When
      // the hub's re-render with the cluster's reported capabilities took longer than it
      // holds a new cluster's first state (a loaded machine), the agent first applies the
      // rendering with the defaults and then this one: wait for it, as for the Deployment.
      // The test's kube-apiserver is built from source (no release version): its major
      // and minor, as the agent reports them.
      const minor = K8S_VERSION.split('.').slice(0, 2).join('.');
      await waitFor(
        async () => {
          const runtime = (await read(name, 'v1', 'ConfigMap', 'web-shop-runtime')) as
            (KubernetesObject & { data?: Record<string, string> }) | undefined;
          return (
            runtime?.data?.kubeVersion === `${minor}.0` &&
            (await read(name, 'policy/v1', 'PodDisruptionBudget', 'web-shop')) !== undefined &&
            (await read(name, 'autoscaling/v2', 'HorizontalPodAutoscaler', 'web-shop')) !==
              undefined &&
            (await read(name, 'rbac.authorization.k8s.io/v1', 'RoleBinding', 'web-shop')) !==
              undefined
          );
        },
        {
          ...wait,
          what: `${name}: the PDB (policy/v1), HPA (autoscaling/v2), RoleBinding and .Capabilities.KubeVersion ${minor}.0 (logs in ${f.logDir})`,
        },
      );
      await rollOutShop(fleet!.clusters.get(name)!.kubeconfigPath);
    }
    await f.waitForRevision(f.firstCommit, 120_000);
    assert.equal(
      await read('shop-us', 'monitoring.coreos.com/v1', 'ServiceMonitor', 'web-shop'),
      undefined,
    );

    // What the hub renders for each cluster is what `flotilla render --hub` shows.
    const render = (name: string, extra: string[] = []) =>
      f.cli(['render', '--repo', f.repo.dir, '--cluster', name, '--bundle', 'shop', ...extra]);
    assert.ok(
      kindsOf(await render('shop-eu', ['--hub'])).includes(
        'monitoring.coreos.com/v1 ServiceMonitor',
      ),
    );
    const us = kindsOf(await render('shop-us', ['--hub']));
    assert.ok(!us.includes('monitoring.coreos.com/v1 ServiceMonitor'));
    assert.ok(us.includes('policy/v1 PodDisruptionBudget'));
    // Without the cluster's capabilities, helm knows no resource-level entries: the
    // chart falls back to an API version this Kubernetes no longer serves.
    assert.ok(kindsOf(await render('shop-us')).includes('policy/v1beta1 PodDisruptionBudget'));

    // The CRD arrives on shop-us: its agent reports it, the hub re-renders, and the
    // ServiceMonitor follows, at the same commit.
    await applyManifests(f.clusters.get('shop-us')!.kubeconfigPath, SERVICE_MONITOR_CRD);
    await waitFor(
      async () =>
        (await read('shop-us', 'monitoring.coreos.com/v1', 'ServiceMonitor', 'web-shop')) !==
        undefined,
      {
        ...wait,
        what: `the ServiceMonitor on shop-us after its CRD was installed (logs in ${f.logDir})`,
      },
    );
    const rows = await f.waitForRevision(f.firstCommit, 120_000);
    assert.deepEqual(
      rows.filter((r) => r.name.startsWith('shop-')).map((r) => [r.name, r.state]),
      [
        ['shop-eu', 'Ready'],
        ['shop-us', 'Ready'],
      ],
    );
  },
);
