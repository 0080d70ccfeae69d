import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { ClusterCapabilities, DesiredState } from '@flotilla/common';
import { FleetRenderer, renderFleet } from './renderer.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';
import { apiVersionArgs } from './tool-sources.js';
import type { ToolRequest, ToolRunner } from './tools.js';

// Stands in for `helm template` of a chart that branches on .Capabilities, as public
// charts do: a ServiceMonitor only where monitoring.coreos.com/v1 is served, and the
// Kubernetes version it was told in a ConfigMap.
class CapabilityAwareHelm implements ToolRunner {
  readonly runs: string[][] = [];
  run(req: ToolRequest): Promise<string> {
    const args = req.args('/R', '/S');
    this.runs.push(args);
    if (req.tool !== 'helm') return Promise.reject(new Error(`unexpected ${req.tool} run`));
    const kube = args[args.indexOf('--kube-version') + 1] ?? '';
    const served = args
      .filter((a) => a.startsWith('--api-versions='))
      .flatMap((a) => a.slice('--api-versions='.length).split(','));
    const docs = [configMap('info', { kubeVersion: kube })];
    if (served.includes('monitoring.coreos.com/v1'))
      docs.push(
        'apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: app\n',
      );
    return Promise.resolve(docs.join('---\n'));
  }
}

const chart = {
  'bundles/app/bundle.yaml': bundleYaml(
    'app',
    '  source: { helm: { chart: chart } }\n  namespace: app\n  targets:\n    - clusterSelector: {}\n',
  ),
  'bundles/app/chart/Chart.yaml':
    'apiVersion: v2\nname: app\nversion: 1.0.0\nkubeVersion: ">=1.23.0-0"\n',
  'bundles/app/chart/templates/all.yaml': 'x',
};

const BASE = ['apps/v1', 'apps/v1/Deployment', 'policy/v1', 'v1', 'v1/Pod'];
const withMonitoring = (kubeVersion = 'v1.35.4'): ClusterCapabilities => ({
  kubeVersion,
  apiVersions: [...BASE, 'monitoring.coreos.com/v1', 'monitoring.coreos.com/v1/ServiceMonitor'],
});
const plain = (kubeVersion = 'v1.35.4'): ClusterCapabilities => ({
  kubeVersion,
  apiVersions: BASE,
});

function kinds(state: DesiredState | undefined): string[] {
  return (state?.bundles ?? []).flatMap((b) => b.objects.map((o) => o.kind)).sort();
}

function told(state: DesiredState | undefined): unknown {
  const info = state?.bundles[0]?.objects.find((o) => o.kind === 'ConfigMap');
  return (info as { data?: { kubeVersion?: string } } | undefined)?.data?.kubeVersion;
}

describe('helm with each cluster capabilities', () => {
  const files = {
    ...chart,
    'clusters/a.yaml': clusterYaml('a'),
    'clusters/b.yaml': clusterYaml('b'),
    'clusters/m.yaml': clusterYaml('m'),
    'clusters/new.yaml': clusterYaml('new'),
  };

  test('helm-runs-once-per-distinct-capabilities-and-clusters-with-equal-ones-share-the-output', async () => {
    const helm = new CapabilityAwareHelm();
    // a and b report equal capabilities in separate objects, as two agents would.
    const capabilities = new Map([
      ['a', plain()],
      ['b', plain()],
      ['m', withMonitoring()],
    ]);
    const out = await renderFleet(repo(files), 'r1', { tools: helm, capabilities });
    assert.deepEqual(out.errors, []);
    assert.equal(out.stats.toolRuns, 3, 'a+b, m, and new (the default) each need one run');
    assert.deepEqual(kinds(out.clusters.get('m')), ['ConfigMap', 'ServiceMonitor']);
    assert.deepEqual(kinds(out.clusters.get('a')), ['ConfigMap']);
    assert.equal(out.clusters.get('a')?.bundles[0], out.clusters.get('b')?.bundles[0]);
    assert.equal(told(out.clusters.get('a')), 'v1.35.4');
    assert.equal(told(out.clusters.get('new')), 'v1.35.0', 'never reported: the built-in default');
    const args = helm.runs.find((r) => r.some((a) => a.includes('monitoring.coreos.com/v1')));
    assert.ok(args?.includes('--kube-version'));
    assert.deepEqual(
      args?.filter((a) => a.startsWith('--api-versions=')),
      [`--api-versions=${withMonitoring().apiVersions.join(',')}`],
    );
  });

  test('a-capabilities-change-re-runs-helm-for-that-cluster-only', async () => {
    const helm = new CapabilityAwareHelm();
    const r = new FleetRenderer({ tools: helm });
    const tree = repo(files);
    const first = await r.render(tree, 'r1', {
      capabilities: new Map([
        ['a', plain()],
        ['b', plain()],
        ['m', plain()],
      ]),
    });
    assert.equal(first.stats.toolRuns, 2);
    // The ServiceMonitor CRD gets installed on b.
    const second = await r.render(tree, 'r1', {
      capabilities: new Map([
        ['a', plain()],
        ['b', withMonitoring()],
        ['m', plain()],
      ]),
    });
    assert.equal(second.stats.toolRuns, 1);
    assert.deepEqual(kinds(second.clusters.get('b')), ['ConfigMap', 'ServiceMonitor']);
    assert.notEqual(second.clusters.get('b')?.digest, first.clusters.get('b')?.digest);
    for (const c of ['a', 'm', 'new'])
      assert.equal(second.clusters.get(c)?.digest, first.clusters.get(c)?.digest, c);
  });

  test('a-cluster-that-never-reported-renders-with-its-declared-capabilities-else-the-hub-default', async () => {
    const helm = new CapabilityAwareHelm();
    const declared = clusterYaml(
      'm',
      {},
      '  kubeVersion: v1.29.4\n  apiVersions: [monitoring.coreos.com/v1, v1]\n',
    );
    const out = await renderFleet(
      repo({ ...chart, 'clusters/m.yaml': declared, 'clusters/d.yaml': clusterYaml('d') }),
      'r',
      { tools: helm, defaultCapabilities: { kubeVersion: 'v1.31.0', apiVersions: [] } },
    );
    assert.deepEqual(out.errors, []);
    assert.equal(told(out.clusters.get('m')), 'v1.29.4');
    assert.deepEqual(kinds(out.clusters.get('m')), ['ConfigMap', 'ServiceMonitor']);
    assert.equal(told(out.clusters.get('d')), 'v1.31.0');
    assert.deepEqual(kinds(out.clusters.get('d')), ['ConfigMap']);
  });

  test('a-report-replaces-declared-capabilities-and-one-without-a-version-keeps-the-declared-version', async () => {
    const helm = new CapabilityAwareHelm();
    const declared = clusterYaml('m', {}, '  kubeVersion: v1.29.4\n  apiVersions: [v1]\n');
    const out = await renderFleet(repo({ ...chart, 'clusters/m.yaml': declared }), 'r', {
      tools: helm,
      capabilities: new Map([['m', { ...withMonitoring(), kubeVersion: '' }]]),
    });
    assert.equal(told(out.clusters.get('m')), 'v1.29.4');
    assert.deepEqual(kinds(out.clusters.get('m')), ['ConfigMap', 'ServiceMonitor']);
  });

  test('bad-declared-capabilities-are-errors-with-file-and-line', async () => {
    const out = await renderFleet(
      repo({
        ...chart,
        'clusters/x.yaml': clusterYaml('x', {}, '  vars: {}\n  kubeVersion: latest\n'),
        'clusters/y.yaml': clusterYaml('y', {}, '  apiVersions: ["apps/v1, policy/v1"]\n'),
      }),
      'r',
      { tools: new CapabilityAwareHelm() },
    );
    const messages = out.errors.map((e) => e.message).sort();
    assert.match(
      messages[0] ?? '',
      /^clusters\/x\.yaml:8: spec\.kubeVersion "latest" is not a version/,
    );
    assert.match(
      messages[1] ?? '',
      /^clusters\/y\.yaml:7: spec\.apiVersions\[0\] "apps\/v1, policy\/v1" is not group\/version/,
    );
    assert.deepEqual(out.brokenClusters.sort(), ['x', 'y']);
  });
});

describe('rendering one cluster', () => {
  test('kustomize-is-not-run-for-a-bundle-the-cluster-does-not-get', async () => {
    const helm = new CapabilityAwareHelm();
    const files = {
      'clusters/a.yaml': clusterYaml('a', { env: 'prod' }),
      'clusters/b.yaml': clusterYaml('b', { env: 'dev' }),
      'bundles/k/bundle.yaml': bundleYaml(
        'k',
        '  source: { kustomize: { path: . } }\n  targets:\n    - clusterSelector: { matchLabels: { env: dev } }\n',
      ),
      'bundles/k/kustomization.yaml': 'resources: []\n',
      'bundles/u/bundle.yaml': bundleYaml('u', '  source: { kustomize: { path: . } }\n'),
      'bundles/u/kustomization.yaml': 'resources: []\n',
      'bundles/p/bundle.yaml': bundleYaml('p', '  targets:\n    - clusterSelector: {}\n'),
      'bundles/p/manifests/cm.yaml': configMap('p'),
    };
    const out = await renderFleet(repo(files), 'r', { tools: helm, clusters: ['a'] });
    assert.deepEqual(out.errors, []);
    assert.deepEqual(helm.runs, [], 'neither the dev-only nor the untargeted bundle is built');
    assert.deepEqual([...out.clusters.keys()], ['a']);
    assert.deepEqual(kinds(out.clusters.get('a')), ['ConfigMap']);
  });
});

test('api-versions-are-passed-in-comma-joined-arguments-below-the-per-argument-limit', () => {
  const entries = Array.from({ length: 3000 }, (_, i) => `group-${i}.example.com/v1/Kind${i}`);
  const args = apiVersionArgs(entries);
  assert.ok(args.length > 1);
  for (const a of args) assert.ok(a.length <= 32 * 1024 + '--api-versions='.length);
  assert.deepEqual(
    args.flatMap((a) => a.slice('--api-versions='.length).split(',')),
    entries,
  );
  assert.deepEqual(apiVersionArgs([]), []);
});
