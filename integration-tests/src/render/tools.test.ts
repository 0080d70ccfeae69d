// The renderer against the real kustomize and helm programs (built and cached by
// tools/build-tools.sh), and `flotilla render` on the example fleet repo.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { MapRepoTree, readDirectoryTree, renderFleet } from '@flotilla/hub';
import type { KubeObject } from '@flotilla/common';
import { binaryPaths, requirePrerequisite } from '@flotilla/test-env';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const EXAMPLE = join(ROOT, 'deploy', 'examples', 'fleet');
const FLOTILLA = join(ROOT, 'hub', 'dist', 'cli', 'main.js');

const bins = binaryPaths();
const skip = await requirePrerequisite(
  'kustomize and helm',
  () => {
    accessSync(bins.kustomize, constants.X_OK);
    accessSync(bins.helm, constants.X_OK);
    return true;
  },
  'run integration-tests/tools/prereqs.sh (builds kustomize and helm), or set FLOTILLA_KUSTOMIZE / FLOTILLA_HELM',
);
const tools = { kustomizePath: bins.kustomize, helmPath: bins.helm };

function flotilla(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [FLOTILLA, ...args],
      {
        env: { ...process.env, FLOTILLA_KUSTOMIZE: bins.kustomize, FLOTILLA_HELM: bins.helm },
        timeout: 60_000,
      },
      (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function ids(yamlStream: string): string[] {
  return parseAllDocuments(yamlStream)
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null)
    .map(
      (o) =>
        `${o.metadata.labels?.['flotilla.dev/bundle'] ?? '?'}:${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`,
    )
    .sort();
}

describe('flotilla render on deploy/examples/fleet', { skip }, () => {
  const expected: Record<string, string[]> = {
    'edge-eu': [
      'platform:ConfigMap/platform/cluster-info',
      'platform:Namespace//platform',
      'podinfo:Deployment/podinfo/podinfo',
      'podinfo:Namespace//podinfo',
      'podinfo:Service/podinfo/podinfo',
    ],
    'edge-us': [
      'platform:ConfigMap/platform/cluster-info',
      'platform:Namespace//platform',
      'podinfo:Deployment/podinfo/podinfo',
      'podinfo:Namespace//podinfo',
      'podinfo:Service/podinfo/podinfo',
    ],
    'lab-1': [
      'hello:ConfigMap/hello/hello-message',
      'hello:Deployment/hello/hello',
      'hello:Namespace//hello',
      'platform:ConfigMap/platform/cluster-info',
      'platform:Namespace//platform',
      'settings:ConfigMap/settings/feature-flags',
      'settings:ConfigMap/settings/team-settings',
      'settings:Namespace//settings',
    ],
  };
  for (const [cluster, objects] of Object.entries(expected)) {
    test(`prints-the-expected-objects-for-${cluster}`, async () => {
      const out = await flotilla(['render', '--repo', EXAMPLE, '--cluster', cluster]);
      assert.equal(out.stderr, '');
      assert.equal(out.code, 0);
      assert.deepEqual(ids(out.stdout), objects);
    });
  }

  test('per-cluster-customization-reaches-the-output', async () => {
    const eu = (await flotilla(['render', '--repo', EXAMPLE, '--cluster', 'edge-eu', '-o', 'json']))
      .stdout;
    const state = JSON.parse(eu) as {
      bundles: { name: string; objects: (KubeObject & { spec?: { replicas?: number } })[] }[];
    };
    const podinfo = state.bundles.find((b) => b.name === 'podinfo')?.objects ?? [];
    assert.equal(podinfo.find((o) => o.kind === 'Deployment')?.spec?.replicas, 3);
    assert.equal(
      podinfo.find((o) => o.kind === 'Service')?.metadata.annotations?.['flotilla.dev/tier'],
      'production',
    );
    const lab = await flotilla([
      'render',
      '--repo',
      EXAMPLE,
      '--cluster',
      'lab-1',
      '--bundle',
      'settings',
    ]);
    assert.match(lab.stdout, /logLevel: debug/, 'the overlay patch (kustomize)');
    assert.match(lab.stdout, /owner: platform-team/, 'the target JSON patch with a variable');
    assert.match(lab.stdout, /cluster: lab-1/, 'variables in kustomize output');
    const hello = await flotilla([
      'render',
      '--repo',
      EXAMPLE,
      '--cluster',
      'lab-1',
      '--bundle',
      'hello',
    ]);
    assert.match(hello.stdout, /replicas: 2/, 'per-target Helm values');
    assert.match(hello.stdout, /message: Hello from the lab/, 'a variable in Helm values');
  });
});

describe('real kustomize and helm', { skip }, () => {
  const cluster =
    'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: c1\n  labels: { env: dev }\n';
  const bundle = (name: string, source: string): string =>
    `apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: ${name}\nspec:\n  source: ${source}\n  namespace: ${name}\n  targets:\n    - clusterSelector: {}\n`;

  test('the-example-repo-renders-through-both-programs-deterministically', async () => {
    const tree = await readDirectoryTree(EXAMPLE);
    const a = await renderFleet(tree, 'r', tools);
    const b = await renderFleet(tree, 'r', tools);
    assert.deepEqual(a.errors, []);
    assert.equal(a.stats.toolRuns, 2, 'one kustomize run and one helm run (one lab cluster)');
    assert.equal(a.clusters.get('lab-1')?.digest, b.clusters.get('lab-1')?.digest);
    assert.equal(JSON.stringify(a.clusters.get('lab-1')), JSON.stringify(b.clusters.get('lab-1')));
  });

  test('a-broken-chart-is-a-bundle-error-with-helms-message-and-repo-paths-and-other-bundles-render', async () => {
    const tree = MapRepoTree.fromStrings({
      'clusters/c1.yaml': cluster,
      'bundles/bad/bundle.yaml': bundle('bad', '{ helm: { chart: chart } }'),
      'bundles/bad/chart/Chart.yaml': 'apiVersion: v2\nname: bad\nversion: 0.1.0\n',
      'bundles/bad/chart/templates/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.nope.deeper }}\n',
      'bundles/ok/bundle.yaml': bundle('ok', '{ path: manifests }'),
      'bundles/ok/manifests/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n',
    });
    const out = await renderFleet(tree, 'r', tools);
    assert.equal(out.errors.length, 1, out.errors.map((e) => e.message).join('\n'));
    const e = out.errors[0];
    assert.equal(e?.bundle, 'bad');
    assert.match(
      e?.message ?? '',
      /^bundles\/bad\/chart\/Chart.yaml: helm failed \(exit 1\): .*nil pointer evaluating interface \{\}\.deeper/s,
    );
    assert.doesNotMatch(e?.message ?? '', /flotilla-helm-|\/tmp\//, 'no temp paths in the message');
    // Helm names the template "<chart name>/templates/…": shown as the chart's repo path, with its line.
    assert.match(e?.message ?? '', /template: bundles\/bad\/chart\/templates\/cm\.yaml:4:\d+: /);
    assert.deepEqual(
      out.clusters.get('c1')?.bundles.map((b) => b.name),
      ['ok'],
    );
  });

  test('a-kustomization-with-a-remote-base-is-refused-before-kustomize-runs', async () => {
    const tree = MapRepoTree.fromStrings({
      'clusters/c1.yaml': cluster,
      'bundles/remote/bundle.yaml': bundle('remote', '{ kustomize: { path: k } }'),
      'bundles/remote/k/kustomization.yaml':
        'resources:\n  - https://raw.githubusercontent.com/kubernetes/website/main/content/en/examples/application/deployment.yaml\n',
    });
    const out = await renderFleet(tree, 'r', tools);
    assert.equal(out.errors.length, 1);
    assert.match(
      out.errors[0]?.message ?? '',
      /^bundles\/remote\/k\/kustomization.yaml:2: resources\[0\] "https:\/\/raw\.githubusercontent\.com\/.*" is a remote base: the hub builds Kustomize bundles without network access/,
    );
    assert.equal(out.clusters.get('c1')?.bundles.length, 0);
  });

  // Bases (directories) may be anywhere in the repo; a single file outside the
  // kustomization's directory is refused by kustomize's default load restrictor.
  test('a-kustomization-naming-a-file-outside-its-directory-fails-with-the-repo-path', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-kust-'));
    try {
      await mkdir(join(dir, 'clusters'));
      await mkdir(join(dir, 'bundles', 'k', 'k'), { recursive: true });
      await mkdir(join(dir, 'bundles', 'other'), { recursive: true });
      await writeFile(join(dir, 'clusters', 'c1.yaml'), cluster);
      await writeFile(
        join(dir, 'bundles', 'k', 'bundle.yaml'),
        bundle('k', '{ kustomize: { path: k } }'),
      );
      await writeFile(
        join(dir, 'bundles', 'k', 'k', 'kustomization.yaml'),
        'resources: [../../other/cm.yaml]\n',
      );
      await writeFile(
        join(dir, 'bundles', 'other', 'cm.yaml'),
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n',
      );
      const out = await renderFleet(await readDirectoryTree(dir), 'r', tools);
      assert.ok(
        out.errors.some((e) => e.bundle === 'k' && /kustomize failed/.test(e.message)),
        out.errors.map((e) => e.message).join('\n'),
      );
      const e = out.errors.find((x) => x.bundle === 'k');
      assert.doesNotMatch(e?.message ?? '', /flotilla-kustomize-|\/tmp\//, 'no temp paths');
      assert.match(e?.message ?? '', /bundles\/other\/cm\.yaml/, 'the repo path it tried to read');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a-base-shared-by-two-bundles-builds-for-both-and-plugins-stay-refused', async () => {
    const files = {
      'clusters/c1.yaml': cluster,
      'apps/base/kustomization.yaml': 'resources: [cm.yaml]\n',
      'apps/base/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: shared\n',
      'bundles/one/bundle.yaml': bundle('one', '{ kustomize: { path: k } }'),
      'bundles/one/k/kustomization.yaml': 'namePrefix: one-\nresources: [../../../apps/base]\n',
      'bundles/two/bundle.yaml': bundle('two', '{ kustomize: { path: k } }'),
      'bundles/two/k/kustomization.yaml': 'namePrefix: two-\nresources: [../../../apps/base]\n',
      'bundles/exec/bundle.yaml': bundle('exec', '{ kustomize: { path: k } }'),
      'bundles/exec/k/kustomization.yaml': `resources: [../../../apps/base]
transformers:
  - |-
    apiVersion: example.com/v1
    kind: Run
    metadata:
      name: run
      annotations:
        config.kubernetes.io/function: |
          exec:
            path: /bin/sh
`,
    };
    const out = await renderFleet(MapRepoTree.fromStrings(files), 'r', tools);
    const names = (out.clusters.get('c1')?.bundles ?? []).flatMap((b) =>
      b.objects.map((o) => `${b.name}:${o.metadata.name}`),
    );
    assert.deepEqual(names.sort(), ['one:one-shared', 'two:two-shared']);
    assert.deepEqual(
      out.errors.map((e) => e.bundle),
      ['exec'],
    );
    assert.match(out.errors[0]?.message ?? '', /kustomize failed .*external plugins disabled/s);
  });
});
