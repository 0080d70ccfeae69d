import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DesiredState, KubeObject } from '@flotilla/common';
import { FleetRenderer, renderFleet } from './renderer.js';
import { applyJsonPatch, mergePatch } from './patch.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';
import type { ToolRequest, ToolRunner } from './tools.js';

function objects(state: DesiredState | undefined, bundle?: string): KubeObject[] {
  return (state?.bundles ?? [])
    .filter((b) => bundle === undefined || b.name === bundle)
    .flatMap((b) => b.objects);
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: web
          image: nginx:1
`;

describe('patches', async () => {
  const files = {
    'clusters/eu.yaml': clusterYaml('eu', { env: 'prod', region: 'eu' }, '  vars: { tag: "2" }\n'),
    'clusters/dev.yaml': clusterYaml('dev', { env: 'dev' }),
    'bundles/web/manifests/deploy.yaml': deployment,
    'bundles/web/manifests/cm.yaml': configMap('web', { a: '1' }),
  };
  const bundle = (targets: string): string =>
    bundleYaml('web', `  namespace: web\n  targets:\n${targets}`);

  test('merge-and-json-patches-change-the-selected-objects-of-matching-clusters-only', async () => {
    const out = await renderFleet(
      repo({
        ...files,
        'bundles/web/bundle.yaml': bundle(`    - clusterSelector: { matchLabels: { env: prod } }
      patches:
        - target: { kind: Deployment, name: web, group: apps, namespace: web }
          merge: { spec: { replicas: 3 }, metadata: { annotations: { region: "\${cluster.labels.region}" } } }
        - target: { kind: Deployment, name: web }
          jsonPatch:
            - { op: replace, path: /spec/template/spec/containers/0/image, value: "nginx:\${vars.tag}" }
            - { op: add, path: /metadata/labels/tier, value: gold }
        - target: { kind: ConfigMap, name: web }
          merge: { data: { a: null, b: "2" } }
    - clusterSelector: {}
`),
      }),
      'r',
    );
    assert.deepEqual(out.errors, []);
    const eu = objects(out.clusters.get('eu'));
    const dep = eu.find((o) => o.kind === 'Deployment') as KubeObject & {
      spec: { replicas: number; template: { spec: { containers: { image: string }[] } } };
    };
    assert.equal(dep.spec.replicas, 3);
    assert.equal(dep.spec.template.spec.containers[0]?.image, 'nginx:2');
    assert.equal(dep.metadata.annotations?.region, 'eu');
    assert.equal(dep.metadata.labels?.tier, 'gold');
    assert.equal(dep.metadata.labels?.['flotilla.dev/bundle'], 'web');
    assert.deepEqual(
      (eu.find((o) => o.kind === 'ConfigMap') as unknown as { data: unknown }).data,
      { b: '2' },
    );
    const devDep = objects(out.clusters.get('dev')).find(
      (o) => o.kind === 'Deployment',
    ) as unknown as { spec: { replicas: number } };
    assert.equal(devDep.spec.replicas, 1);
  });

  test('a-patch-that-matches-nothing-is-an-error-naming-the-patch-with-file-and-line', async () => {
    const out = await renderFleet(
      repo({
        ...files,
        'bundles/web/bundle.yaml': bundle(`    - clusterSelector: {}
      patches:
        - target: { kind: Deployment, name: wbe }
          merge: { spec: { replicas: 3 } }
`),
      }),
      'r',
    );
    const e = out.errors.find((x) => x.cluster === 'eu');
    assert.ok(e, 'an error for cluster eu');
    assert.equal(e.file, 'bundles/web/bundle.yaml');
    assert.equal(e.line, 10);
    assert.match(
      e.message,
      /spec\.targets\[0\]\.patches\[0\]: patch matches no object \(Deployment wbe\)/,
    );
    assert.deepEqual(out.held.get('eu'), ['web']);
  });

  test('a-failing-json-patch-operation-is-an-error-not-a-crash', async () => {
    const out = await renderFleet(
      repo({
        ...files,
        'bundles/web/bundle.yaml': bundle(`    - clusterSelector: {}
      patches:
        - target: { kind: ConfigMap, name: web }
          jsonPatch: [ { op: remove, path: /data/missing } ]
`),
      }),
      'r',
    );
    assert.match(
      out.errors[0]?.message ?? '',
      /JSON patch on ConfigMap web failed: operation 0 \(remove \/data\/missing\): path does not exist/,
    );
  });

  test('malformed-patches-are-rejected-when-bundle-yaml-is-read', async () => {
    const cases: [string, RegExp][] = [
      ['        - target: { kind: ConfigMap, name: web }\n', /needs exactly one of merge/],
      [
        '        - target: { kind: ConfigMap, name: web }\n          jsonPatch: [ { op: frob, path: /a } ]\n',
        /must be one of add, remove/,
      ],
      [
        '        - target: { kind: ConfigMap, name: web }\n          jsonPatch: [ { op: add, path: a, value: 1 } ]\n',
        /is not a JSON pointer/,
      ],
      [
        '        - target: { kind: ConfigMap, name: web }\n          merge: { data: { a: "${nope}" } }\n',
        /unknown variable/,
      ],
    ];
    for (const [patch, re] of cases) {
      const out = await renderFleet(
        repo({
          ...files,
          'bundles/web/bundle.yaml': bundle(`    - clusterSelector: {}\n      patches:\n${patch}`),
        }),
        'r',
      );
      assert.match(out.errors[0]?.message ?? '', re);
      assert.equal(out.errors[0]?.file, 'bundles/web/bundle.yaml');
    }
  });

  test('an-undefined-variable-in-a-patch-is-an-error-for-that-cluster-only', async () => {
    const out = await renderFleet(
      repo({
        ...files,
        'bundles/web/bundle.yaml': bundle(`    - clusterSelector: {}
      patches:
        - target: { kind: ConfigMap, name: web }
          merge: { data: { tag: "\${vars.tag}" } }
`),
      }),
      'r',
    );
    assert.deepEqual(
      out.errors.map((e) => e.cluster),
      ['dev'],
    );
    assert.match(out.errors[0]?.message ?? '', /variable "tag" is not defined for cluster "dev"/);
    assert.equal(
      (
        objects(out.clusters.get('eu')).find((o) => o.kind === 'ConfigMap') as unknown as {
          data: { tag: string };
        }
      ).data.tag,
      '2',
    );
  });

  test('rfc-7386-and-rfc-6902-semantics', () => {
    assert.deepEqual(mergePatch({ a: 'b', c: { d: 'e', f: 'g' } }, { a: 'z', c: { f: null } }), {
      a: 'z',
      c: { d: 'e' },
    });
    assert.deepEqual(mergePatch({ a: [1, 2] }, { a: [3] }), { a: [3] });
    const doc = { list: [1, 3], obj: { 'a/b': 1, 'm~n': 2 } };
    assert.deepEqual(
      applyJsonPatch(doc, [
        { op: 'add', path: '/list/1', value: 2 },
        { op: 'add', path: '/list/-', value: 4 },
        { op: 'test', path: '/obj/a~1b', value: 1 },
        { op: 'move', from: '/obj/m~0n', path: '/moved' },
        { op: 'copy', from: '/moved', path: '/copied' },
      ]),
      { list: [1, 2, 3, 4], obj: { 'a/b': 1 }, moved: 2, copied: 2 },
    );
    assert.deepEqual(doc.list, [1, 3], 'the input is not mutated');
    assert.throws(
      () => applyJsonPatch(doc, [{ op: 'test', path: '/list/0', value: 9 }]),
      /test failed/,
    );
    assert.throws(
      () => applyJsonPatch(doc, [{ op: 'replace', path: '/nope', value: 1 }]),
      /does not exist/,
    );
  });
});

describe('cluster groups', async () => {
  const group = (name: string, spec: string): string =>
    `apiVersion: flotilla.dev/v1alpha1\nkind: ClusterGroup\nmetadata:\n  name: ${name}\nspec:\n${spec}`;
  const files = {
    'clusters/edge-1.yaml': clusterYaml('edge-1', { tier: 'edge' }),
    'clusters/edge-2.yaml': clusterYaml('edge-2', { tier: 'edge', env: 'dev' }),
    'clusters/core.yaml': clusterYaml('core', { tier: 'core' }),
    'clusterGroups/edge.yaml': group(
      'edge',
      '  selector: { matchLabels: { tier: edge } }\n  clusterNames: [core]\n',
    ),
    'bundles/b/manifests/cm.yaml': configMap('b', {}, 'default'),
  };

  test('a-target-with-clusterGroup-matches-the-groups-clusters-combined-with-other-conditions', async () => {
    const out = await renderFleet(
      repo({
        ...files,
        'bundles/b/bundle.yaml': bundleYaml(
          'b',
          '  targets:\n    - clusterGroup: edge\n      clusterSelector: { matchExpressions: [{ key: env, operator: DoesNotExist }] }\n',
        ),
      }),
      'r',
    );
    assert.deepEqual(out.errors, []);
    assert.equal(objects(out.clusters.get('edge-1')).length, 1);
    assert.equal(objects(out.clusters.get('core')).length, 1, 'listed by name');
    assert.equal(objects(out.clusters.get('edge-2')).length, 0, 'excluded by the selector');
  });

  test('an-unknown-or-broken-group-is-a-bundle-error-with-the-targets-line', async () => {
    const out = await renderFleet(
      repo({
        ...files,
        'clusterGroups/broken.yaml': group(
          'broken',
          '  selector: { matchLabels: { "bad key!": x } }\n',
        ),
        'bundles/b/bundle.yaml': bundleYaml(
          'b',
          '  targets:\n    - clusterSelector: {}\n    - clusterGroup: nope\n',
        ),
        'bundles/c/bundle.yaml': bundleYaml('c', '  targets:\n    - clusterGroup: broken\n'),
        'bundles/c/manifests/cm.yaml': configMap('c', {}, 'default'),
      }),
      'r',
    );
    const msgs = out.errors.map((e) => `${e.file}:${e.line ?? ''} ${e.message}`);
    assert.ok(
      msgs.some(
        (m) =>
          m.startsWith('bundles/b/bundle.yaml:8 ') &&
          m.includes('clusterGroup "nope" is not a valid cluster group'),
      ),
      msgs.join('\n'),
    );
    assert.ok(
      msgs.some((m) => m.startsWith('clusterGroups/broken.yaml')),
      msgs.join('\n'),
    );
    assert.ok(
      msgs.some((m) => m.includes('clusterGroup "broken"')),
      msgs.join('\n'),
    );
  });
});

/** A fake of our own ToolRunner: records runs and prints what `out` returns. */
class FakeTools implements ToolRunner {
  readonly runs: ToolRequest[] = [];
  constructor(private readonly out: (req: ToolRequest, values: unknown) => string) {}
  run(req: ToolRequest): Promise<string> {
    this.runs.push(req);
    const values = req.scratchFiles?.['values.json'];
    return Promise.resolve(
      this.out(req, values === undefined ? undefined : JSON.parse(String(values))),
    );
  }
}

describe('kustomize and helm bundles', async () => {
  const clusters = {
    'clusters/a.yaml': clusterYaml('a', { env: 'prod' }, '  vars: { size: large }\n'),
    'clusters/b.yaml': clusterYaml('b', { env: 'prod' }, '  vars: { size: large }\n'),
    'clusters/c.yaml': clusterYaml('c', { env: 'dev' }, '  vars: { size: small }\n'),
  };
  const kustomizeFiles = {
    ...clusters,
    'bundles/k/bundle.yaml': bundleYaml(
      'k',
      '  source: { kustomize: { path: overlay } }\n  namespace: k\n  substitute: true\n  targets:\n    - clusterSelector: {}\n',
    ),
    'bundles/k/base/kustomization.yaml': 'resources: [cm.yaml]\n',
    'bundles/k/base/cm.yaml': configMap('k'),
    'bundles/k/overlay/kustomization.yaml': 'resources: [../base]\n',
  };

  test('kustomize-output-is-the-bundle-with-variables-substituted-and-runs-once-per-bundle-version', async () => {
    const tools = new FakeTools(() => configMap('k', { size: '${vars.size}' }));
    const r = new FleetRenderer({ tools });
    const out = await r.render(repo(kustomizeFiles), 'r1');
    assert.deepEqual(out.errors, []);
    assert.equal(tools.runs.length, 1);
    const req = tools.runs[0] as ToolRequest;
    assert.equal(req.tool, 'kustomize');
    assert.deepEqual(req.args('/R', '/S'), ['build', '/R/bundles/k/overlay']);
    assert.deepEqual([...req.files.keys()].sort(), [
      'bundles/k/base/cm.yaml',
      'bundles/k/base/kustomization.yaml',
      'bundles/k/overlay/kustomization.yaml',
    ]);
    assert.deepEqual((objects(out.clusters.get('c'))[0] as unknown as { data: unknown }).data, {
      size: 'small',
    });
    assert.equal(objects(out.clusters.get('a'))[0]?.metadata.namespace, 'k');
    await r.render(
      repo({
        ...kustomizeFiles,
        'clusters/c.yaml': clusterYaml('c', { env: 'dev' }, '  vars: { size: tiny }\n'),
      }),
      'r2',
    );
    assert.equal(tools.runs.length, 1, 'an unchanged bundle never re-runs kustomize');
    await r.render(
      repo({ ...kustomizeFiles, 'bundles/k/base/cm.yaml': configMap('k', { x: 'y' }) }),
      'r3',
    );
    assert.equal(tools.runs.length, 2, 'a changed input file re-runs it');
  });

  test('a-kustomize-source-without-a-kustomization-is-a-bundle-error', async () => {
    const files: Record<string, string> = { ...kustomizeFiles };
    delete files['bundles/k/overlay/kustomization.yaml'];
    const out = await renderFleet(repo(files), 'r', { tools: new FakeTools(() => '') });
    assert.match(out.errors[0]?.message ?? '', /"bundles\/k\/overlay" holds no kustomization.yaml/);
  });

  const helmFiles = {
    ...clusters,
    'bundles/h/bundle.yaml': bundleYaml(
      'h',
      `  source:
    helm:
      chart: chart
      values: { replicas: 1, size: "\${vars.size}" }
      valuesFiles: ["values-\${cluster.labels.env}.yaml"]
  namespace: h
  targets:
    - clusterName: c
      helm: { releaseName: dev, values: { replicas: 2 } }
    - clusterSelector: {}
`,
    ),
    'bundles/h/chart/Chart.yaml': 'apiVersion: v2\nname: h\nversion: 0.1.0\n',
    'bundles/h/chart/templates/cm.yaml': 'x',
    'bundles/h/values-prod.yaml': 'a: 1\n',
    'bundles/h/values-dev.yaml': 'a: 2\n',
  };

  test('helm-runs-once-per-distinct-values-with-per-target-values-and-vars', async () => {
    const tools = new FakeTools((req, values) =>
      configMap(`${req.args('/R', '/S')[1]}-cm`, {
        v: Buffer.from(JSON.stringify(values)).toString('base64'),
      }),
    );
    const r = new FleetRenderer({ tools });
    const out = await r.render(repo(helmFiles), 'r1');
    assert.deepEqual(out.errors, []);
    assert.equal(tools.runs.length, 2, 'clusters a and b share one run');
    const args = tools.runs.map((t) => t.args('/R', '/S').join(' ')).sort();
    assert.deepEqual(args, [
      'template dev /R/bundles/h/chart --namespace h --include-crds --skip-tests --kube-version v1.35.0 --values /R/bundles/h/values-dev.yaml --values /S/values.json',
      'template h /R/bundles/h/chart --namespace h --include-crds --skip-tests --kube-version v1.35.0 --values /R/bundles/h/values-prod.yaml --values /S/values.json',
    ]);
    assert.deepEqual(
      JSON.parse(
        Buffer.from(
          (objects(out.clusters.get('c'))[0] as unknown as { data: { v: string } }).data.v,
          'base64',
        ).toString(),
      ),
      { replicas: 2, size: 'small' },
    );
    assert.equal(objects(out.clusters.get('a'))[0]?.metadata.name, 'h-cm');
    assert.equal(
      out.clusters.get('a')?.bundles[0],
      out.clusters.get('b')?.bundles[0],
      'identical output is stored once',
    );
    await r.render(repo(helmFiles), 'r2');
    assert.equal(tools.runs.length, 2, 'nothing changed: helm is not run again');
  });

  test('concurrent-renders-run-in-call-order-so-the-newest-revision-finishes-last', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const tools: ToolRunner = { run: async () => (await gate, configMap('h')) };
    const r = new FleetRenderer({ tools });
    const order: string[] = [];
    const first = r.render(repo(helmFiles), 'r1').then((x) => order.push(x.revision));
    // r2 needs no helm run: without ordering it would finish while r1 still waits.
    const second = r.render(repo(clusters), 'r2').then((x) => order.push(x.revision));
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    await Promise.all([first, second]);
    assert.deepEqual(order, ['r1', 'r2']);
  });

  test('helm-output-is-not-subject-to-variable-substitution', async () => {
    const tools = new FakeTools(() => configMap('h', { script: 'echo ${HOME}' }));
    const out = await renderFleet(repo(helmFiles), 'r', { tools });
    assert.deepEqual(out.errors, []);
    assert.equal(
      (objects(out.clusters.get('a'))[0] as unknown as { data: { script: string } }).data.script,
      'echo ${HOME}',
    );
  });

  test('a-bad-document-in-helm-output-names-the-template-that-rendered-it', async () => {
    const output =
      '---\n# Source: h/templates/ok.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n---\n# Source: h/templates/bad.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {}\n';
    const out = await renderFleet(repo(helmFiles), 'r', { tools: new FakeTools(() => output) });
    assert.equal(
      out.errors[0]?.message,
      'bundles/h/chart/templates/bad.yaml (as rendered by helm):2: ConfigMap has no metadata.name',
    );
  });

  test('a-values-file-outside-the-bundle-is-rejected', async () => {
    const files = {
      ...helmFiles,
      'bundles/h/bundle.yaml': helmFiles['bundles/h/bundle.yaml'].replace(
        'values-${cluster.labels.env}.yaml',
        '../../clusters/a.yaml',
      ),
    };
    const out = await renderFleet(repo(files), 'r', { tools: new FakeTools(() => '') });
    assert.ok(out.errors.length > 0);
    assert.ok(
      out.errors.every((e) =>
        /must be inside the bundle directory|leaves the repository/.test(e.message),
      ),
      out.errors.map((e) => e.message).join('\n'),
    );
  });

  test('kustomize-and-chart-paths-leaving-the-repository-are-rejected', async () => {
    const out = await renderFleet(
      repo({
        ...clusters,
        'bundles/k/bundle.yaml': bundleYaml(
          'k',
          '  source: { kustomize: { path: ../../../etc } }\n  targets:\n    - clusterSelector: {}\n',
        ),
        'bundles/h/bundle.yaml': bundleYaml(
          'h',
          '  source: { helm: { chart: /abs/chart } }\n  targets:\n    - clusterSelector: {}\n',
        ),
      }),
      'r',
      { tools: new FakeTools(() => '') },
    );
    const msgs = out.errors.map((e) => e.message).join('\n');
    assert.match(
      msgs,
      /bundles\/k\/bundle.yaml:6: spec.source.kustomize.path "..\/..\/..\/etc" leaves the repository/,
    );
    assert.match(
      msgs,
      /bundles\/h\/bundle.yaml:6: spec.source.helm.chart "\/abs\/chart" must be a relative POSIX path/,
    );
  });

  test('a-missing-program-is-a-clear-bundle-error-and-other-bundles-still-render', async () => {
    const out = await renderFleet(
      repo({
        ...kustomizeFiles,
        'bundles/plain/bundle.yaml': bundleYaml(
          'plain',
          '  namespace: p\n  targets:\n    - clusterSelector: {}\n',
        ),
        'bundles/plain/manifests/cm.yaml': configMap('p'),
      }),
      'r',
      { kustomizePath: '/nonexistent/kustomize' },
    );
    assert.equal(out.errors.length, 1);
    assert.equal(out.errors[0]?.bundle, 'k');
    assert.match(
      out.errors[0]?.message ?? '',
      /the kustomize program "\/nonexistent\/kustomize" was not found \(install it, or set render.kustomizePath/,
    );
    assert.equal(objects(out.clusters.get('a'), 'plain').length, 1);
  });
});
