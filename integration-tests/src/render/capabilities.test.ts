// The hub's renderer (in its worker thread) with the real, pinned helm: a chart that
// declares kubeVersion ">=1.23.0-0" and branches on .Capabilities renders per cluster
// capabilities, and helm runs once per distinct capabilities, not once per cluster.
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { describe, test } from 'node:test';
import { MapRepoTree, WorkerRenderer } from '@flotilla/hub';
import type { ClusterCapabilities, DesiredState } from '@flotilla/common';
import { binaryPaths, requirePrerequisite } from '@flotilla/test-env';

const bins = binaryPaths();
const skip = await requirePrerequisite(
  'helm',
  () => {
    accessSync(bins.helm, constants.X_OK);
    return true;
  },
  'run integration-tests/tools/prereqs.sh (builds helm), or set FLOTILLA_HELM',
);

const cluster = (name: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${name}\n  labels: {}\n`;

const files: Record<string, string> = {
  ...Object.fromEntries(['a', 'b', 'c', 'd'].map((n) => [`clusters/${n}.yaml`, cluster(n)])),
  'bundles/app/bundle.yaml': `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata: { name: app }
spec:
  source: { helm: { chart: chart } }
  namespace: app
  targets: [ { clusterSelector: {} } ]
`,
  'bundles/app/chart/Chart.yaml':
    'apiVersion: v2\nname: app\nversion: 1.0.0\nkubeVersion: ">=1.23.0-0"\n',
  'bundles/app/chart/templates/_helpers.tpl': `{{- define "app.pdbApiVersion" -}}
{{- if .Capabilities.APIVersions.Has "policy/v1/PodDisruptionBudget" -}}policy/v1{{- else -}}policy/v1beta1{{- end -}}
{{- end -}}
`,
  'bundles/app/chart/templates/info.yaml': `apiVersion: v1
kind: ConfigMap
metadata: { name: info }
data:
  kubeVersion: {{ .Capabilities.KubeVersion.Version | quote }}
  pdb: {{ include "app.pdbApiVersion" . | quote }}
`,
  'bundles/app/chart/templates/servicemonitor.yaml': `{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: { name: app }
spec: { endpoints: [ { port: http } ] }
{{- end }}
`,
};

const BASE = [
  'v1',
  'v1/Pod',
  'apps/v1',
  'apps/v1/Deployment',
  'policy/v1',
  'policy/v1/PodDisruptionBudget',
];
const plain: ClusterCapabilities = { kubeVersion: 'v1.35.4', apiVersions: BASE };
const monitored: ClusterCapabilities = {
  kubeVersion: 'v1.35.4',
  apiVersions: [...BASE, 'monitoring.coreos.com/v1', 'monitoring.coreos.com/v1/ServiceMonitor'],
};

function info(state: DesiredState | undefined): Record<string, string> | undefined {
  const cm = state?.bundles[0]?.objects.find((o) => o.kind === 'ConfigMap');
  return (cm as { data?: Record<string, string> } | undefined)?.data;
}
const kinds = (state: DesiredState | undefined): string[] =>
  (state?.bundles[0]?.objects ?? []).map((o) => o.kind).sort();

describe('helm with cluster capabilities, through the render worker', { skip }, () => {
  test('helm-runs-once-per-distinct-capabilities-and-each-cluster-gets-its-own-rendering', async () => {
    const renderer = new WorkerRenderer({ helmPath: bins.helm });
    try {
      const tree = MapRepoTree.fromStrings(files);
      // a and b: equal capabilities (separate objects, as two agents' reports); c has the
      // ServiceMonitor CRD; d never reported (the built-in default).
      const first = await renderer.render(tree, 'r1', {
        capabilities: new Map([
          ['a', plain],
          ['b', { ...plain, apiVersions: [...BASE] }],
          ['c', monitored],
        ]),
      });
      assert.deepEqual(first.errors, []);
      assert.equal(first.stats.toolRuns, 3, 'a and b share one helm run');
      assert.deepEqual(info(first.clusters.get('a')), { kubeVersion: 'v1.35.4', pdb: 'policy/v1' });
      assert.deepEqual(kinds(first.clusters.get('c')), ['ConfigMap', 'ServiceMonitor']);
      assert.deepEqual(kinds(first.clusters.get('a')), ['ConfigMap']);
      // Never reported: v1.35.0 passes the chart's kubeVersion, but helm knows no
      // resource-level entries of its own.
      assert.deepEqual(info(first.clusters.get('d')), {
        kubeVersion: 'v1.35.0',
        pdb: 'policy/v1beta1',
      });

      // The CRD arrives on a: a now has c's capabilities, so c's helm run serves it too;
      // only a's state changes.
      const second = await renderer.render(tree, 'r1', {
        capabilities: new Map([
          ['a', monitored],
          ['b', plain],
          ['c', monitored],
        ]),
      });
      assert.equal(second.stats.toolRuns, 0);
      assert.deepEqual(kinds(second.clusters.get('a')), ['ConfigMap', 'ServiceMonitor']);
      for (const c of ['b', 'c', 'd'])
        assert.equal(second.clusters.get(c)?.digest, first.clusters.get(c)?.digest, c);
      // Capabilities no cluster had before: exactly one new run.
      const third = await renderer.render(tree, 'r1', {
        capabilities: new Map([
          ['a', monitored],
          ['b', { ...plain, kubeVersion: 'v1.34.2' }],
          ['c', monitored],
        ]),
      });
      assert.equal(third.stats.toolRuns, 1);
      assert.equal(info(third.clusters.get('b'))?.kubeVersion, 'v1.34.2');
    } finally {
      await renderer.stop();
    }
  });

  test('a-cluster-on-a-kubernetes-older-than-the-chart-allows-is-a-render-error-for-it-alone', async () => {
    const renderer = new WorkerRenderer({ helmPath: bins.helm });
    try {
      const out = await renderer.render(MapRepoTree.fromStrings(files), 'r1', {
        capabilities: new Map([['a', { ...plain, kubeVersion: 'v1.22.9' }]]),
      });
      assert.equal(out.errors.length, 1);
      assert.equal(out.errors[0]?.cluster, 'a');
      assert.match(
        out.errors[0]?.message ?? '',
        /Chart\.yaml: .*chart requires kubeVersion: >=1\.23\.0-0 which is incompatible with Kubernetes v1\.22\.9/,
      );
      assert.deepEqual(kinds(out.clusters.get('b')), ['ConfigMap']);
    } finally {
      await renderer.stop();
    }
  });
});
