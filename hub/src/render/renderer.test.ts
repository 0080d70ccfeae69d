import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BUNDLE_LABEL, desiredStateDigest } from '@flotilla/common';
import type { DesiredState } from '@flotilla/common';
import { FleetRenderer, renderFleet } from './renderer.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';

const everyone = `  targets:\n    - clusterSelector: {}\n`;

function names(state: DesiredState | undefined): string[] {
  return (state?.bundles ?? []).flatMap((b) =>
    b.objects.map((o) => `${b.name}:${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`),
  );
}

describe('targeting', async () => {
  const tree = repo({
    'clusters/prod-eu.yaml': clusterYaml('prod-eu', { env: 'prod', region: 'eu' }),
    'clusters/prod-us.yaml': clusterYaml('prod-us', { env: 'prod', region: 'us' }),
    'clusters/dev-1.yaml': clusterYaml('dev-1', { env: 'dev' }),
    'clusters/special.yaml': clusterYaml('special', { env: 'prod', region: 'eu' }),
    'bundles/app/bundle.yaml': bundleYaml(
      'app',
      `  namespace: app
  targets:
    - clusterName: special
      doNotDeploy: true
    - clusterSelector: { matchLabels: { env: prod }, matchExpressions: [{ key: region, operator: In, values: [eu] }] }
      vars: { size: large }
    - clusterSelector: { matchExpressions: [{ key: env, operator: Exists }] }
      vars: { size: small }
  substitute: true
`,
    ),
    'bundles/app/manifests/cm.yaml': configMap('app', { size: '${vars.size}' }),
    'bundles/untargeted/bundle.yaml': bundleYaml('untargeted', '  namespace: x\n'),
    'bundles/untargeted/manifests/cm.yaml': configMap('u'),
  });
  const out = await renderFleet(tree, 'rev1');

  test('first-matching-target-wins', async () => {
    assert.deepEqual(out.errors, []);
    const size = (c: string): unknown => out.clusters.get(c)?.bundles[0]?.objects[0]?.data;
    assert.deepEqual(size('prod-eu'), { size: 'large' });
    assert.deepEqual(size('prod-us'), { size: 'small' });
    assert.deepEqual(size('dev-1'), { size: 'small' });
  });

  test('clusterName-with-doNotDeploy-excludes-a-cluster-before-later-targets', async () => {
    assert.deepEqual(out.clusters.get('special')?.bundles, []);
  });

  test('a-bundle-without-targets-goes-to-no-cluster', async () => {
    for (const s of out.clusters.values())
      assert.ok(!s.bundles.some((b) => b.name === 'untargeted'));
  });

  test('objects-carry-the-bundle-label-and-default-namespace', async () => {
    const obj = out.clusters.get('prod-eu')?.bundles[0]?.objects[0];
    assert.equal(obj?.metadata.labels?.[BUNDLE_LABEL], 'app');
    assert.equal(obj?.metadata.namespace, 'app');
  });
});

describe('variables', async () => {
  const base = {
    'clusters/c1.yaml': clusterYaml(
      'c1',
      { region: 'eu-west' },
      '  vars: { tier: gold, replicas: 2 }\n',
    ),
    'bundles/b/bundle.yaml': bundleYaml(
      'b',
      `  namespace: ns\n  substitute: true\n  targets:\n    - clusterSelector: {}\n      vars: { replicas: "3" }\n`,
    ),
  };

  test('cluster-name-labels-and-vars-are-substituted-target-vars-override-cluster-vars', async () => {
    const cm = `apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg-\${cluster.name}
data:
  region: \${cluster.labels.region}
  tier: \${vars.tier}
  replicas: "\${vars.replicas}"
  literal: $\${HOME}
`;
    const out = await renderFleet(repo({ ...base, 'bundles/b/manifests/cm.yaml': cm }), 'r');
    assert.deepEqual(out.errors, []);
    const obj = out.clusters.get('c1')?.bundles[0]?.objects[0];
    assert.equal(obj?.metadata.name, 'cfg-c1');
    assert.deepEqual(obj?.data, {
      region: 'eu-west',
      tier: 'gold',
      replicas: '3',
      literal: '${HOME}',
    });
  });

  test('unknown-variable-is-an-error-with-file-and-line-never-an-empty-string', async () => {
    const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: ${vars.nope}\n';
    const out = await renderFleet(repo({ ...base, 'bundles/b/manifests/cm.yaml': cm }), 'r');
    assert.equal(out.errors.length, 1);
    const e = out.errors[0]!;
    assert.equal(e.file, 'bundles/b/manifests/cm.yaml');
    assert.equal(e.line, 6);
    assert.equal(e.bundle, 'b');
    assert.equal(e.cluster, 'c1');
    assert.match(e.message, /variable "nope" is not defined for cluster "c1"/);
    assert.deepEqual(out.clusters.get('c1')?.bundles, []);
    assert.deepEqual(out.held.get('c1'), ['b']);
  });

  test('plain-scalars-are-typed-after-substitution-quoted-ones-stay-strings', async () => {
    const dep = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: { region: \${cluster.labels.region}, \${vars.tier}: "yes" }
spec:
  replicas: \${vars.replicas}
  paused: "\${vars.replicas}"
  template: # \${vars.only-in-a-comment}
    spec:
      containers: [{ name: web, image: "web:\${vars.tier}" }]
`;
    const out = await renderFleet(repo({ ...base, 'bundles/b/manifests/dep.yaml': dep }), 'r');
    assert.deepEqual(out.errors, []);
    const obj = out.clusters.get('c1')?.bundles[0]?.objects[0];
    assert.equal((obj?.spec as { replicas: unknown }).replicas, 3);
    assert.equal((obj?.spec as { paused: unknown }).paused, '3');
    assert.deepEqual(obj?.metadata.labels, { region: 'eu-west', gold: 'yes', [BUNDLE_LABEL]: 'b' });
  });

  test('a-variable-value-cannot-inject-yaml-structure', async () => {
    const files = {
      ...base,
      'clusters/c1.yaml': clusterYaml('c1', {}, '  vars: { evil: "x\\nkind: Secret" }\n'),
      'bundles/b/manifests/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: ${vars.evil}\n',
    };
    const out = await renderFleet(repo(files), 'r');
    assert.deepEqual(out.errors, []);
    const obj = out.clusters.get('c1')?.bundles[0]?.objects[0];
    assert.equal(obj?.kind, 'ConfigMap');
    assert.deepEqual(obj?.data, { a: 'x\nkind: Secret' });
  });

  test('unsupported-variable-form-is-an-error', async () => {
    const cm = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: ${HOME}\n';
    const out = await renderFleet(repo({ ...base, 'bundles/b/manifests/cm.yaml': cm }), 'r');
    assert.match(out.errors[0]?.message ?? '', /cm\.yaml:6: \$\{HOME\}: unknown variable/);
  });
});

describe('validation', async () => {
  const ok = {
    'clusters/c1.yaml': clusterYaml('c1'),
    'bundles/good/bundle.yaml': bundleYaml('good', everyone),
    'bundles/good/manifests/cm.yaml': configMap('good', {}, 'default'),
  };

  test('broken-yaml-is-reported-with-file-and-line-and-other-bundles-still-render', async () => {
    const out = await renderFleet(
      repo({
        ...ok,
        'bundles/bad/bundle.yaml': bundleYaml('bad', everyone),
        'bundles/bad/manifests/a.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n',
      }),
      'r',
    );
    assert.equal(out.errors.length, 1);
    assert.equal(out.errors[0]?.file, 'bundles/bad/manifests/a.yaml');
    assert.equal(out.errors[0]?.bundle, 'bad');
    assert.ok(out.errors[0]?.line !== undefined && out.errors[0].line >= 4);
    assert.match(
      out.errors[0]?.message ?? '',
      /^bundles\/bad\/manifests\/a\.yaml:\d+: invalid YAML/,
    );
    assert.deepEqual(names(out.clusters.get('c1')), ['good:ConfigMap/default/good']);
    assert.deepEqual(out.held.get('c1'), ['bad']);
  });

  test('objects-without-kind-or-name-are-errors-with-the-document-line', async () => {
    const text = `${configMap('one')}---\napiVersion: v1\nmetadata:\n  name: nokind\n---\napiVersion: v1\nkind: Secret\nmetadata: {}\n`;
    const out = await renderFleet(repo({ ...ok, 'bundles/good/manifests/more.yaml': text }), 'r');
    assert.equal(out.errors.length, 1);
    assert.equal(out.errors[0]?.line, 7);
    assert.match(out.errors[0]?.message ?? '', /more\.yaml:7: object has no kind/);
    const out2 = await renderFleet(
      repo({
        ...ok,
        'bundles/good/manifests/more.yaml': `apiVersion: v1\nkind: Secret\nmetadata: {}\n`,
      }),
      'r',
    );
    assert.match(out2.errors[0]?.message ?? '', /more\.yaml:1: Secret has no metadata\.name/);
  });

  test('the-same-object-from-two-bundles-is-an-error-naming-both-and-neither-is-deployed', async () => {
    const out = await renderFleet(
      repo({
        ...ok,
        'bundles/a/bundle.yaml': bundleYaml('a', everyone),
        'bundles/a/manifests/cm.yaml': configMap('shared', {}, 'default'),
        'bundles/b/bundle.yaml': bundleYaml('b', everyone),
        'bundles/b/manifests/cm.yaml': configMap('shared', { x: '1' }, 'default'),
      }),
      'r',
    );
    assert.equal(out.errors.length, 1);
    assert.match(
      out.errors[0]?.message ?? '',
      /\/ConfigMap\/default\/shared is produced by bundles "a" and "b"/,
    );
    assert.deepEqual(names(out.clusters.get('c1')), ['good:ConfigMap/default/good']);
    assert.deepEqual(out.held.get('c1'), ['a', 'b']);
  });

  test('unknown-fields-in-bundle-yaml-are-errors-at-their-line', async () => {
    const out = await renderFleet(
      repo({
        ...ok,
        'bundles/good/bundle.yaml': bundleYaml('good', `  targes:\n    - clusterSelector: {}\n`),
      }),
      'r',
    );
    assert.equal(out.errors[0]?.line, 6);
    assert.match(out.errors[0]?.message ?? '', /unknown field "spec.targes"/);
  });

  test('a-source-path-leaving-the-repository-is-rejected', async () => {
    const out = await renderFleet(
      repo({
        ...ok,
        'bundles/good/bundle.yaml': bundleYaml(
          'good',
          `  source: { path: ../../../etc }\n${everyone}`,
        ),
      }),
      'r',
    );
    assert.match(
      out.errors[0]?.message ?? '',
      /bundle\.yaml:6: spec\.source\.path "\.\.\/\.\.\/\.\.\/etc" leaves the repository/,
    );
  });

  test('a-cluster-whose-name-differs-from-its-file-is-rejected', async () => {
    const out = await renderFleet(repo({ ...ok, 'clusters/c2.yaml': clusterYaml('other') }), 'r');
    assert.equal(out.errors[0]?.cluster, 'c2');
    assert.match(out.errors[0]?.message ?? '', /c2\.yaml:4: metadata\.name must be "c2"/);
    assert.deepEqual(out.brokenClusters, ['c2']);
  });

  test('output-over-the-size-limit-is-an-error-not-a-crash', async () => {
    const big = configMap('big', { blob: 'x'.repeat(5000) }, 'default');
    const out = await renderFleet(
      repo({
        ...ok,
        'clusters/c2.yaml': clusterYaml('c2', { big: 'yes' }),
        'bundles/big/bundle.yaml': bundleYaml(
          'big',
          `  targets:\n    - clusterSelector: { matchLabels: { big: "yes" } }\n`,
        ),
        'bundles/big/manifests/cm.yaml': big,
      }),
      'r',
      { maxClusterBytes: 4096 },
    );
    assert.equal(out.errors.length, 1);
    assert.equal(out.errors[0]?.cluster, 'c2');
    assert.match(out.errors[0]?.message ?? '', /over the limit of 4096 bytes/);
    assert.equal(out.clusters.has('c2'), false);
    assert.ok(out.clusters.has('c1'));
  });

  test('namespaced-objects-get-the-default-namespace-cluster-scoped-ones-do-not', async () => {
    const ns =
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: r\n';
    const out = await renderFleet(
      repo({
        'clusters/c1.yaml': clusterYaml('c1'),
        'bundles/b/bundle.yaml': bundleYaml(
          'b',
          `  namespace: app\n${everyone}      namespace: override\n`,
        ),
        'bundles/b/manifests/a.yaml': ns,
        'bundles/b/manifests/b.yaml': configMap('cm'),
      }),
      'r',
    );
    assert.deepEqual(out.errors, []);
    assert.deepEqual(names(out.clusters.get('c1')), [
      'b:ConfigMap/override/cm',
      'b:Namespace//app',
      'b:ClusterRole//r',
    ]);
  });
});

describe('determinism and content addressing', async () => {
  function fleet(n: number, order: 'asc' | 'desc' = 'asc'): Record<string, string> {
    const files: Record<string, string> = {
      'bundles/shared/bundle.yaml': bundleYaml('shared', `  namespace: shared\n${everyone}`),
      'bundles/shared/manifests/b.yaml': `${configMap('two')}---\n${configMap('one')}`,
      'bundles/shared/manifests/a.yaml': configMap('zero'),
      'bundles/percluster/bundle.yaml': bundleYaml(
        'percluster',
        `  namespace: pc\n  substitute: true\n${everyone}`,
      ),
      'bundles/percluster/manifests/cm.yaml': configMap('id', { name: '${cluster.name}' }),
    };
    const idx = [...Array(n).keys()];
    for (const i of order === 'asc' ? idx : idx.reverse())
      files[`clusters/c${i}.yaml`] = clusterYaml(`c${i}`, { env: 'prod' });
    return files;
  }

  test('rendering-the-same-commit-twice-gives-identical-bytes-and-digests', async () => {
    const a = await renderFleet(repo(fleet(5)), 'r');
    const b = await renderFleet(repo(fleet(5, 'desc')), 'r');
    const bytes = (r: typeof a): string => JSON.stringify([...r.clusters]);
    assert.equal(bytes(a), bytes(b));
    const c0 = a.clusters.get('c0')!;
    assert.equal(c0.digest, desiredStateDigest('c0', c0.bundles, [], { maxShare: 0.5 }));
    assert.deepEqual(names(c0), [
      'percluster:ConfigMap/pc/id',
      'shared:ConfigMap/shared/one',
      'shared:ConfigMap/shared/two',
      'shared:ConfigMap/shared/zero',
    ]);
  });

  test('a-thousand-clusters-with-identical-output-share-one-bundle-object', async () => {
    const out = await renderFleet(repo(fleet(1000)), 'r');
    assert.equal(out.clusters.size, 1000);
    const shared = new Set(
      [...out.clusters.values()].map((s) => s.bundles.find((b) => b.name === 'shared')),
    );
    assert.equal(shared.size, 1);
    const per = new Set(
      [...out.clusters.values()].map((s) => s.bundles.find((b) => b.name === 'percluster')),
    );
    assert.equal(per.size, 1000);
    assert.equal(out.stats.bundleRenders, 1001);
  });

  test('a-commit-that-changes-one-bundle-re-renders-only-that-bundle', async () => {
    const r = new FleetRenderer();
    const files = fleet(200);
    const first = await r.render(repo(files), 'r1');
    assert.equal(first.stats.bundleRenders, 201);
    const second = await r.render(
      repo({ ...files, 'bundles/shared/manifests/a.yaml': configMap('zero', { v: '2' }) }),
      'r2',
    );
    assert.equal(second.stats.bundleRenders, 1);
    assert.equal(second.stats.bundlesPrepared, 1);
    assert.equal(second.clusters.get('c7')?.revision, 'r2');
    assert.equal(
      second.clusters.get('c7')?.bundles.find((b) => b.name === 'percluster'),
      first.clusters.get('c7')?.bundles.find((b) => b.name === 'percluster'),
    );
    const third = await r.render(
      repo({ ...files, 'clusters/c7.yaml': clusterYaml('c7', { env: 'dev' }) }),
      'r3',
    );
    assert.equal(
      third.stats.bundleRenders,
      1,
      'only the shared bundle, whose rendering was evicted, renders again',
    );
  });
});

describe('pause and failure keep the previous state', async () => {
  const files = {
    'clusters/c1.yaml': clusterYaml('c1'),
    'bundles/a/bundle.yaml': bundleYaml('a', everyone),
    'bundles/a/manifests/cm.yaml': configMap('a', { v: '1' }, 'default'),
  };

  test('a-paused-cluster-keeps-the-state-rendered-before-the-pause', async () => {
    const r = new FleetRenderer();
    const before = (await r.render(repo(files), 'r1')).clusters.get('c1');
    const paused = await r.render(
      repo({
        ...files,
        'clusters/c1.yaml': clusterYaml('c1', {}, '  paused: true\n'),
        'bundles/a/manifests/cm.yaml': configMap('a', { v: '2' }, 'default'),
      }),
      'r2',
    );
    assert.equal(paused.clusters.get('c1'), before);
    assert.deepEqual(paused.pausedClusters, ['c1']);
    assert.equal(
      (
        await renderFleet(
          repo({ ...files, 'clusters/c1.yaml': clusterYaml('c1', {}, '  paused: true\n') }),
          'r',
        )
      ).clusters.has('c1'),
      false,
    );
  });

  test('a-paused-or-broken-bundle-keeps-its-previous-rendering-and-is-held', async () => {
    const r = new FleetRenderer();
    const before = (await r.render(repo(files), 'r1')).clusters.get('c1')?.bundles[0];
    const paused = await r.render(
      repo({
        ...files,
        'bundles/a/bundle.yaml': bundleYaml('a', `  paused: true\n${everyone}`),
        'bundles/a/manifests/cm.yaml': configMap('a', { v: '2' }, 'default'),
      }),
      'r2',
    );
    assert.equal(paused.clusters.get('c1')?.bundles[0], before);
    assert.deepEqual(paused.held.get('c1'), ['a']);
    const broken = await r.render(
      repo({ ...files, 'bundles/a/manifests/cm.yaml': 'kind: [' }),
      'r3',
    );
    assert.equal(broken.clusters.get('c1')?.bundles[0], before);
    assert.equal(broken.clusters.get('c1')?.revision, 'r3');
  });
});

describe('mass-prune policy', async () => {
  const files = {
    'clusters/c1.yaml': clusterYaml('c1'),
    'clusters/c2.yaml': clusterYaml('c2', {}, '  allowMassPrune: true\n'),
    'bundles/a/bundle.yaml': bundleYaml('a', everyone),
    'bundles/a/manifests/cm.yaml': configMap('a', { v: '1' }, 'default'),
  };

  test('every-desired-state-carries-the-hub-share-and-the-cluster-opt-in', async () => {
    const out = await renderFleet(repo(files), 'r', { maxPruneShare: 0.3 });
    assert.deepEqual(out.errors, []);
    assert.deepEqual(out.clusters.get('c1')?.prune, { maxShare: 0.3 });
    assert.deepEqual(out.clusters.get('c2')?.prune, { maxShare: 0.3, allowMassPrune: true });
    assert.equal((await renderFleet(repo(files), 'r')).clusters.get('c1')?.prune?.maxShare, 0.5);
  });

  test('an-opt-in-in-bundle-yaml-changes-the-bundle-and-the-state-digest', async () => {
    const before = (await renderFleet(repo(files), 'r')).clusters.get('c1');
    const after = (
      await renderFleet(
        repo({
          ...files,
          'bundles/a/bundle.yaml': bundleYaml('a', `  allowMassPrune: true\n${everyone}`),
        }),
        'r',
      )
    ).clusters.get('c1');
    assert.equal(after?.bundles[0]?.allowMassPrune, true);
    assert.equal(before?.bundles[0]?.allowMassPrune, undefined);
    assert.notEqual(after?.digest, before?.digest);
  });

  test('allow-mass-prune-must-be-a-boolean', async () => {
    const out = await renderFleet(
      repo({ ...files, 'clusters/c1.yaml': clusterYaml('c1', {}, '  allowMassPrune: maybe\n') }),
      'r',
    );
    assert.match(out.errors[0]?.message ?? '', /clusters\/c1\.yaml:\d+: .*allowMassPrune/);
  });
});
