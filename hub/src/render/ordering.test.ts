// Render-side of Helm hooks, bundle namespaces and dependsOn: what lands in the desired
// state, and which mistakes are render errors with file:line.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUNDLE_LABEL } from '@flotilla/common';
import { renderFleet } from './renderer.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';

const everyone = `  targets:\n    - clusterSelector: {}\n`;

const job = (name: string, annotations: Record<string, string>): string => {
  const ann = Object.entries(annotations)
    .map(([k, v]) => `\n    ${k}: "${v}"`)
    .join('');
  return `apiVersion: batch/v1
kind: Job
metadata:
  name: ${name}
  annotations:${ann}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{ name: main, image: busybox }]
`;
};

describe('helm hooks', async () => {
  test('hook-objects-leave-objects-and-are-ordered-by-weight-then-kind', async () => {
    const sa = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: migrator
  annotations: { helm.sh/hook: pre-install, helm.sh/hook-weight: "-5" }
`;
    const out = await renderFleet(
      repo({
        'clusters/c1.yaml': clusterYaml('c1'),
        'bundles/app/bundle.yaml': bundleYaml('app', `  namespace: app\n${everyone}`),
        'bundles/app/manifests/cm.yaml': configMap('settings'),
        'bundles/app/manifests/hooks.yaml': [
          job('migrate', { 'helm.sh/hook': 'pre-install,pre-upgrade' }),
          sa,
          job('notify', {
            'helm.sh/hook': 'post-upgrade',
            'helm.sh/hook-weight': '3',
            'helm.sh/hook-delete-policy': 'hook-succeeded, hook-failed',
          }),
          job('smoke', { 'helm.sh/hook': 'test' }),
          job('undo', { 'helm.sh/hook': 'pre-rollback' }),
        ].join('---\n'),
      }),
      'r',
    );
    assert.deepEqual(out.errors, []);
    const b = out.clusters.get('c1')?.bundles[0];
    assert.deepEqual(
      b?.objects.map((o) => o.metadata.name),
      ['settings'],
    );
    assert.deepEqual(
      b?.hooks?.map((h) => [h.object.kind, h.object.metadata.name, h.phases, h.weight]),
      [
        ['ServiceAccount', 'migrator', ['pre-install'], -5],
        ['Job', 'migrate', ['pre-install', 'pre-upgrade'], 0],
        ['Job', 'notify', ['post-upgrade'], 3],
      ],
    );
    assert.deepEqual(b?.hooks?.[1]?.deletePolicies, ['before-hook-creation']);
    assert.deepEqual(b?.hooks?.[2]?.deletePolicies, ['hook-succeeded', 'hook-failed']);
    // Hooks are stamped like every object: bundle label, default namespace.
    assert.equal(b?.hooks?.[1]?.object.metadata.namespace, 'app');
    assert.equal(b?.hooks?.[1]?.object.metadata.labels?.[BUNDLE_LABEL], 'app');
  });

  test('a-bad-hook-weight-or-phase-is-an-error-at-the-document', async () => {
    const files = (hook: string): Record<string, string> => ({
      'clusters/c1.yaml': clusterYaml('c1'),
      'bundles/app/bundle.yaml': bundleYaml('app', `  namespace: app\n${everyone}`),
      'bundles/app/manifests/hooks.yaml': `${configMap('x')}---\n${hook}`,
    });
    const weight = await renderFleet(
      repo(files(job('m', { 'helm.sh/hook': 'pre-install', 'helm.sh/hook-weight': 'high' }))),
      'r',
    );
    assert.match(
      weight.errors[0]?.message ?? '',
      /^bundles\/app\/manifests\/hooks\.yaml:7: Job m: helm\.sh\/hook-weight "high" is not an integer/,
    );
    const phase = await renderFleet(repo(files(job('m', { 'helm.sh/hook': 'pre-instal' }))), 'r');
    assert.match(phase.errors[0]?.message ?? '', /unknown helm\.sh\/hook phase "pre-instal"/);
    const policy = await renderFleet(
      repo(
        files(
          job('m', { 'helm.sh/hook': 'pre-install', 'helm.sh/hook-delete-policy': 'sometimes' }),
        ),
      ),
      'r',
    );
    assert.match(
      policy.errors[0]?.message ?? '',
      /unknown helm\.sh\/hook-delete-policy "sometimes"/,
    );
  });
});

describe('bundle namespace', async () => {
  const render = (spec: string, extra: Record<string, string> = {}) =>
    renderFleet(
      repo({
        'clusters/c1.yaml': clusterYaml('c1'),
        'bundles/app/bundle.yaml': bundleYaml('app', spec),
        'bundles/app/manifests/cm.yaml': configMap('settings'),
        ...extra,
      }),
      'r',
    );

  test('the-namespace-is-created-by-default-with-labels-and-annotations', async () => {
    const out = await render(
      `  namespace: app\n  namespaceLabels: { team: web }\n  namespaceAnnotations: { owner: "a@b" }\n${everyone}`,
    );
    assert.deepEqual(out.errors, []);
    assert.deepEqual(out.clusters.get('c1')?.bundles[0]?.namespace, {
      name: 'app',
      labels: { team: 'web' },
      annotations: { owner: 'a@b' },
    });
    const plain = await render(`  namespace: app\n${everyone}`);
    assert.deepEqual(plain.clusters.get('c1')?.bundles[0]?.namespace, { name: 'app' });
  });

  test('a-target-namespace-is-the-one-created', async () => {
    const out = await render(
      `  namespace: app\n  targets:\n    - clusterSelector: {}\n      namespace: app-c1\n`,
    );
    assert.deepEqual(out.clusters.get('c1')?.bundles[0]?.namespace, { name: 'app-c1' });
  });

  test('opted-out-or-declared-as-an-object-means-no-namespace-to-create', async () => {
    const off = await render(`  namespace: app\n  createNamespace: false\n${everyone}`);
    assert.equal(off.clusters.get('c1')?.bundles[0]?.namespace, undefined);
    const declared = await render(`  namespace: app\n${everyone}`, {
      'bundles/app/manifests/ns.yaml': 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n',
    });
    assert.equal(declared.clusters.get('c1')?.bundles[0]?.namespace, undefined);
    const none = await render(everyone);
    assert.equal(none.clusters.get('c1')?.bundles[0]?.namespace, undefined);
  });

  test('namespace-labels-with-createNamespace-false-is-an-error-at-its-line', async () => {
    const out = await render(
      `  namespace: app\n  createNamespace: false\n  namespaceLabels: { a: b }\n${everyone}`,
    );
    assert.match(
      out.errors[0]?.message ?? '',
      /^bundles\/app\/bundle\.yaml:8: spec\.namespaceLabels has no effect with spec\.createNamespace: false/,
    );
  });
});

describe('dependsOn', async () => {
  const bundle = (name: string, deps: string[], targets = everyone): Record<string, string> => ({
    [`bundles/${name}/bundle.yaml`]: bundleYaml(
      name,
      `  namespace: ${name}\n${deps.length ? `  dependsOn:\n${deps.map((d) => `    - ${d}\n`).join('')}` : ''}${targets}`,
    ),
    [`bundles/${name}/manifests/cm.yaml`]: configMap(name),
  });
  const clusters = {
    'clusters/c1.yaml': clusterYaml('c1', { env: 'prod' }),
    'clusters/c2.yaml': clusterYaml('c2', { env: 'dev' }),
  };

  test('dependsOn-travels-in-the-bundle-state', async () => {
    const out = await renderFleet(
      repo({ ...clusters, ...bundle('db', []), ...bundle('app', ['db']) }),
      'r',
    );
    assert.deepEqual(out.errors, []);
    const app = out.clusters.get('c1')?.bundles.find((b) => b.name === 'app');
    assert.deepEqual(app?.dependsOn, ['db']);
    assert.equal(
      out.clusters.get('c1')?.bundles.find((b) => b.name === 'db')?.dependsOn,
      undefined,
    );
  });

  test('a-cycle-is-a-render-error-with-file-and-line-on-every-bundle-in-it', async () => {
    const out = await renderFleet(
      repo({
        ...clusters,
        ...bundle('a', ['b']),
        ...bundle('b', ['c']),
        ...bundle('c', ['a']),
        ...bundle('d', ['a']),
      }),
      'r',
    );
    const messages = out.errors.map((e) => e.message).sort();
    assert.deepEqual(messages, [
      'bundles/a/bundle.yaml:8: spec.dependsOn[0]: dependency cycle: a → b → c → a',
      'bundles/b/bundle.yaml:8: spec.dependsOn[0]: dependency cycle: a → b → c → a',
      'bundles/c/bundle.yaml:8: spec.dependsOn[0]: dependency cycle: a → b → c → a',
    ]);
    assert.deepEqual(out.errors.map((e) => [e.bundle, e.file, e.line]).sort(), [
      ['a', 'bundles/a/bundle.yaml', 8],
      ['b', 'bundles/b/bundle.yaml', 8],
      ['c', 'bundles/c/bundle.yaml', 8],
    ]);
    // The bundles of the cycle are held (no earlier rendering: left out); d still renders.
    assert.deepEqual(
      out.clusters.get('c1')?.bundles.map((b) => b.name),
      ['d'],
    );
    assert.deepEqual(out.held.get('c1'), ['a', 'b', 'c']);
  });

  test('an-unknown-or-self-or-repeated-name-is-an-error-at-its-entry', async () => {
    const unknown = await renderFleet(
      repo({ ...clusters, ...bundle('db', []), ...bundle('app', ['db', 'cache']) }),
      'r',
    );
    assert.deepEqual(
      unknown.errors.map((e) => e.message),
      [
        'bundles/app/bundle.yaml:9: spec.dependsOn[1]: bundle "cache" does not exist (no bundles/cache/bundle.yaml)',
      ],
    );
    const self = await renderFleet(repo({ ...clusters, ...bundle('app', ['app']) }), 'r');
    assert.match(
      self.errors[0]?.message ?? '',
      /^bundles\/app\/bundle\.yaml:8: spec\.dependsOn\[0\]: bundle "app" cannot depend on itself/,
    );
    const twice = await renderFleet(
      repo({ ...clusters, ...bundle('db', []), ...bundle('app', ['db', 'db']) }),
      'r',
    );
    assert.match(twice.errors[0]?.message ?? '', /:9: spec\.dependsOn\[1\]: "db" is listed twice/);
  });

  test('a-dependency-not-deployed-to-a-cluster-is-an-error-for-that-cluster-only', async () => {
    const out = await renderFleet(
      repo({
        ...clusters,
        ...bundle('db', [], `  targets:\n    - clusterSelector: { matchLabels: { env: prod } }\n`),
        ...bundle('app', ['db']),
      }),
      'r',
    );
    assert.deepEqual(
      out.errors.map((e) => [e.cluster, e.message]),
      [
        [
          'c2',
          'bundles/app/bundle.yaml:8: spec.dependsOn[0]: bundle "db" is not deployed to cluster "c2" (none of its targets matches there), so "app" would wait for it forever',
        ],
      ],
    );
    assert.deepEqual(
      out.clusters.get('c1')?.bundles.map((b) => b.name),
      ['app', 'db'],
    );
    assert.deepEqual(out.clusters.get('c2')?.bundles, []);
    assert.deepEqual(out.held.get('c2'), ['app']);
  });

  test('a-broken-dependency-does-not-break-its-dependent', async () => {
    const out = await renderFleet(
      repo({
        ...clusters,
        ...bundle('db', []),
        'bundles/db/manifests/bad.yaml': 'kind: [',
        ...bundle('app', ['db']),
      }),
      'r',
    );
    assert.deepEqual(
      out.errors.map((e) => e.bundle),
      ['db'],
    );
    assert.deepEqual(
      out.clusters.get('c1')?.bundles.map((b) => b.name),
      ['app'],
    );
  });
});
