// The example fleet's Kustomize and Helm bundles, rendered by the real programs, apply
// cleanly with the agent's apply engine on a real (bare) kube-apiserver: what the demo
// promises for any bundle added to deploy/examples/fleet. And content that uses ${...}
// for its own purposes (scripts, dashboards) reaches the cluster byte for byte.
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { KubeClient, applySet, failureMessages, loadKubeConfig } from '@flotilla/agent';
import { MapRepoTree, WorkerRenderer, readDirectoryTree, renderFleet } from '@flotilla/hub';
import { binaryPaths, requireEnv, requirePrerequisite, startCluster } from '@flotilla/test-env';

const EXAMPLE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'deploy',
  'examples',
  'fleet',
);
const bins = binaryPaths();
const skip =
  (await requireEnv(['cluster'])) ??
  (await requirePrerequisite(
    'kustomize and helm',
    () => {
      accessSync(bins.kustomize, constants.X_OK);
      accessSync(bins.helm, constants.X_OK);
      return true;
    },
    'run integration-tests/tools/prereqs.sh (builds kustomize and helm), or set FLOTILLA_KUSTOMIZE / FLOTILLA_HELM',
  ));

test(
  'example-kustomize-and-helm-bundles-apply-on-a-bare-kube-apiserver',
  { skip, timeout: 60_000 },
  async () => {
    const result = await renderFleet(await readDirectoryTree(EXAMPLE), 'example', {
      kustomizePath: bins.kustomize,
      helmPath: bins.helm,
    });
    assert.deepEqual(result.errors, []);
    const state = result.clusters.get('lab-1');
    assert.deepEqual(
      state?.bundles.map((b) => b.name),
      ['hello', 'platform', 'settings'],
    );
    const cluster = await startCluster({ name: 'lab-1' });
    const kube = await KubeClient.create(loadKubeConfig(cluster.kubeconfigPath));
    try {
      for (const b of state?.bundles ?? []) {
        const entries = await applySet(kube, b.objects, { bundle: b.name, force: true });
        assert.deepEqual(failureMessages(entries), [], `bundle ${b.name}`);
        assert.equal(entries.length, b.objects.length);
      }
    } finally {
      kube.close();
      await cluster.stop();
    }
  },
);

const SCRIPT = `#!/bin/sh
set -eu
echo "backup started $(date +%s) by \${USER:-nobody} in \${HOME}" >&2
for f in "$@"; do cp "$f" "/backup/\${f%%.*}-$1.bak"; done
echo '\${cluster.name} and $(hostname) are not Flotilla variables'
`;

const DASHBOARD = JSON.stringify(
  {
    title: 'API latency',
    templating: {
      list: [
        { name: 'datasource', type: 'datasource', query: 'prometheus' },
        { name: 'job', type: 'query', datasource: '\${datasource}', query: 'label_values(job)' },
      ],
    },
    panels: [
      {
        title: 'p99 of $job',
        datasource: { uid: '\${datasource}' },
        targets: [{ expr: 'histogram_quantile(0.99, rate(http_seconds_bucket{job="$job"}[5m]))' }],
      },
    ],
  },
  null,
  2,
);

function indent(text: string, by: string): string {
  return text
    .split('\n')
    .map((l) => (l === '' ? '' : `${by}${l}`))
    .join('\n');
}

test(
  'a-shell-script-and-a-grafana-dashboard-holding-dollar-braces-deploy-unchanged',
  { skip: (await requireEnv(['cluster'])) ?? false, timeout: 60_000 },
  async () => {
    const tree = MapRepoTree.fromStrings({
      'clusters/lab-1.yaml':
        'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: lab-1\n  labels: { env: lab }\n',
      'bundles/ops/bundle.yaml':
        'apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: ops\nspec:\n  namespace: ops\n  targets:\n    - clusterSelector: {}\n',
      'bundles/ops/manifests/namespace.yaml':
        'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ops\n',
      'bundles/ops/manifests/scripts.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: scripts
data:
  backup.sh: |
${indent(SCRIPT, '    ')}`,
      'bundles/ops/manifests/dashboards.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: dashboards
  labels: { grafana_dashboard: "1" }
data:
  api-latency.json: |
${indent(DASHBOARD, '    ')}
`,
    });
    // The hub's own path: the render worker.
    const renderer = new WorkerRenderer();
    const result = await renderer.render(tree, 'scripts').finally(() => renderer.stop());
    assert.deepEqual(result.errors, []);
    const bundle = result.clusters.get('lab-1')?.bundles[0];
    assert.ok(bundle);
    const cluster = await startCluster({ name: 'lab-1' });
    const kube = await KubeClient.create(loadKubeConfig(cluster.kubeconfigPath));
    try {
      const entries = await applySet(kube, bundle.objects, { bundle: 'ops', force: true });
      assert.deepEqual(failureMessages(entries), []);
      const read = async (name: string) =>
        (await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'ops', name }))?.data;
      assert.deepEqual(await read('scripts'), { 'backup.sh': SCRIPT });
      assert.deepEqual(await read('dashboards'), { 'api-latency.json': `${DASHBOARD}\n` });
    } finally {
      kube.close();
      await cluster.stop();
    }
  },
);
