// What the renderer reports per cluster when bundles fail: which bundle, why (file:line)
// and the revision of the rendering the cluster keeps getting.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FleetRenderer } from './renderer.js';
import type { ToolRequest } from './tools.js';
import { helmRenames } from './tool-sources.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';

const everyone = `  namespace: apps\n  targets:\n    - clusterSelector: {}\n`;
const onlyEu = `  namespace: apps\n  targets:\n    - clusterSelector: { matchLabels: { region: eu } }\n`;

const base: Record<string, string> = {
  'clusters/eu.yaml': clusterYaml('eu', { region: 'eu' }, '  vars: { color: blue }\n'),
  'clusters/us.yaml': clusterYaml('us', { region: 'us' }),
  'bundles/good/bundle.yaml': bundleYaml('good', everyone),
  'bundles/good/manifests/cm.yaml': configMap('good', { v: '1' }),
  'bundles/web/bundle.yaml': bundleYaml('web', everyone),
  'bundles/web/manifests/cm.yaml': configMap('web', { v: '1' }),
};

const BROKEN_YAML = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata: [\n';

test('broken-yaml-fails-the-bundle-on-its-clusters-with-file-line-and-the-served-revision', async () => {
  const r = new FleetRenderer();
  await r.render(repo(base), 'rev1');
  const out = await r.render(
    repo({
      ...base,
      'bundles/good/manifests/cm.yaml': configMap('good', { v: '2' }),
      'bundles/web/manifests/cm.yaml': BROKEN_YAML,
    }),
    'rev2',
  );
  for (const c of ['eu', 'us']) {
    const [f, ...more] = out.failures.get(c) ?? [];
    assert.equal(more.length, 0);
    assert.equal(f?.bundle, 'web');
    assert.equal(f?.servingRevision, 'rev1');
    assert.match(f?.messages[0] ?? '', /^bundles\/web\/manifests\/cm\.yaml:\d+: /);
    // The good bundle moved on; the broken one still sends rev1's rendering.
    const good = out.clusters.get(c)?.bundles.find((b) => b.name === 'good');
    assert.deepEqual(good?.objects[0]?.data, { v: '2' });
    assert.ok(out.clusters.get(c)?.bundles.some((b) => b.name === 'web'));
  }
});

test('the-served-revision-stays-the-last-good-one-across-bad-commits-and-clears-when-fixed', async () => {
  const r = new FleetRenderer();
  await r.render(repo(base), 'rev1');
  const broken = { ...base, 'bundles/web/manifests/cm.yaml': BROKEN_YAML };
  await r.render(repo(broken), 'rev2');
  const third = await r.render(
    repo({ ...broken, 'bundles/good/manifests/cm.yaml': configMap('good', { v: '3' }) }),
    'rev3',
  );
  assert.equal(third.failures.get('eu')?.[0]?.servingRevision, 'rev1');
  const fixed = await r.render(repo(base), 'rev4');
  assert.equal(fixed.failures.size, 0);
});

test('a-bundle-failing-at-its-first-render-serves-nothing', async () => {
  const out = await new FleetRenderer().render(
    repo({ ...base, 'bundles/web/manifests/cm.yaml': BROKEN_YAML }),
    'rev1',
  );
  assert.deepEqual(
    out.failures.get('us')?.map((f) => [f.bundle, f.servingRevision]),
    [['web', '']],
  );
  assert.ok(!out.clusters.get('us')?.bundles.some((b) => b.name === 'web'));
});

test('an-unknown-variable-fails-only-on-the-cluster-without-it', async () => {
  const out = await new FleetRenderer().render(
    repo({
      ...base,
      'bundles/web/bundle.yaml': bundleYaml('web', `  substitute: true\n${everyone}`),
      'bundles/web/manifests/cm.yaml': configMap('web', { c: '${vars.color}' }),
    }),
    'rev1',
  );
  assert.equal(out.failures.get('eu'), undefined);
  const [f] = out.failures.get('us') ?? [];
  assert.equal(f?.bundle, 'web');
  assert.match(
    f?.messages[0] ?? '',
    /^bundles\/web\/manifests\/cm\.yaml:\d+: .*"color" is not defined/,
  );
});

test('a-patch-matching-nothing-fails-the-bundle-with-the-bundle-yaml-line', async () => {
  const out = await new FleetRenderer().render(
    repo({
      ...base,
      'bundles/web/bundle.yaml': bundleYaml(
        'web',
        `${everyone}      patches:\n        - target: { kind: Deployment, name: nope }\n          merge: { spec: { replicas: 3 } }\n`,
      ),
    }),
    'rev1',
  );
  assert.match(
    out.failures.get('eu')?.[0]?.messages[0] ?? '',
    /^bundles\/web\/bundle\.yaml:\d+: .*patch matches no object/,
  );
});

test('a-broken-bundle-yaml-fails-where-the-bundle-was-or-everywhere-when-nobody-had-it', async () => {
  const r = new FleetRenderer();
  const euOnly = { ...base, 'bundles/web/bundle.yaml': bundleYaml('web', onlyEu) };
  await r.render(repo(euOnly), 'rev1');
  const broken = { ...base, 'bundles/web/bundle.yaml': 'apiVersion: [\n' };
  const out = await r.render(repo(broken), 'rev2');
  assert.deepEqual([...out.failures.keys()], ['eu']);
  assert.match(out.failures.get('eu')?.[0]?.messages[0] ?? '', /^bundles\/web\/bundle\.yaml:\d+: /);
  assert.equal(out.failures.get('eu')?.[0]?.servingRevision, 'rev1');

  // A fresh renderer (a restarted hub) knows no holder: every cluster may be a target.
  const fresh = await new FleetRenderer().render(repo(broken), 'rev2');
  assert.deepEqual([...fresh.failures.keys()], ['eu', 'us']);
});

test('an-object-from-two-bundles-fails-both-on-that-cluster', async () => {
  const out = await new FleetRenderer().render(
    repo({ ...base, 'bundles/web/manifests/cm.yaml': configMap('good', { v: '1' }) }),
    'rev1',
  );
  const f = out.failures.get('eu') ?? [];
  assert.deepEqual(
    f.map((x) => x.bundle),
    ['good', 'web'],
  );
  for (const x of f) assert.match(x.messages[0] ?? '', /produced by bundles "good" and "web"/);
});

test('a-broken-cluster-file-fails-the-whole-cluster-serving-its-previous-state', async () => {
  const r = new FleetRenderer();
  await r.render(repo(base), 'rev1');
  const out = await r.render(repo({ ...base, 'clusters/us.yaml': 'kind: [\n' }), 'rev2');
  const [f] = out.failures.get('us') ?? [];
  assert.equal(f?.bundle, '');
  assert.equal(f?.servingRevision, 'rev1');
  assert.match(f?.messages[0] ?? '', /^clusters\/us\.yaml:\d+: /);
  assert.equal(out.failures.get('eu'), undefined);
});

test('a-cluster-over-the-size-limit-fails-as-a-whole', async () => {
  const r = new FleetRenderer({ maxClusterBytes: 300 });
  const out = await r.render(repo(base), 'rev1');
  const [f] = out.failures.get('eu') ?? [];
  assert.equal(f?.bundle, '');
  assert.equal(f?.servingRevision, '');
  assert.match(f?.messages[0] ?? '', /desired state of cluster "eu"/);
});

test('a-paused-bundle-is-held-but-not-a-failure', async () => {
  const r = new FleetRenderer();
  await r.render(repo(base), 'rev1');
  const out = await r.render(
    repo({ ...base, 'bundles/web/bundle.yaml': bundleYaml('web', `${everyone}  paused: true\n`) }),
    'rev2',
  );
  assert.deepEqual(out.held.get('eu'), ['web']);
  assert.equal(out.failures.size, 0);
});

test('helm-errors-name-the-charts-templates-by-their-repo-path', async () => {
  assert.deepEqual(
    helmRenames('apiVersion: v2\nname: "mychart" # the chart\n', 'bundles/b/chart'),
    [['mychart', 'bundles/b/chart']],
  );
  // A fake helm that fails the way helm does, through the real error path of the runner.
  const seen: ToolRequest[] = [];
  const tools = {
    run: async (req: ToolRequest): Promise<string> => {
      seen.push(req);
      return '';
    },
  };
  await new FleetRenderer({ tools }).render(
    repo({
      'clusters/eu.yaml': clusterYaml('eu'),
      'bundles/h/bundle.yaml': bundleYaml(
        'h',
        `  source: { helm: { chart: chart } }\n  targets:\n    - clusterSelector: {}\n`,
      ),
      'bundles/h/chart/Chart.yaml': 'apiVersion: v2\nname: mychart\nversion: 0.1.0\n',
      'bundles/h/chart/templates/cm.yaml': configMap('x'),
    }),
    'rev1',
  );
  assert.deepEqual(seen[0]?.renames, [['mychart', 'bundles/h/chart']]);
});
