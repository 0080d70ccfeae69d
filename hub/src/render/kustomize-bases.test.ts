// Kustomize bases and components anywhere in the fleet repo: which builds run when a
// shared file changes, and which references are refused before kustomize runs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ValidationError } from '@flotilla/common';
import { MapRepoTree } from '../source/tree.js';
import { FleetRenderer, renderFleet } from './renderer.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';
import type { ToolRequest, ToolRunner } from './tools.js';

/** A fake of our own ToolRunner: records which bundle each kustomize run was for. */
class RecordingTools implements ToolRunner {
  readonly runs: ToolRequest[] = [];
  run(req: ToolRequest): Promise<string> {
    this.runs.push(req);
    return Promise.resolve(configMap(`from-${req.errorFile.split('/')[1]}`));
  }
  /** Bundles whose build ran since the last call, sorted. */
  take(): string[] {
    const out = this.runs.map((r) => r.errorFile.split('/')[1] as string).sort();
    this.runs.length = 0;
    return out;
  }
}

const kustomizeBundle = (name: string): string =>
  bundleYaml(
    name,
    `  source: { kustomize: { path: overlay } }\n  namespace: ${name}\n  targets:\n    - clusterSelector: {}\n`,
  );

// web and api use apps/base (which uses apps/common); api also uses a component;
// solo has its base inside its bundle.
const FILES: Record<string, string> = {
  'clusters/a.yaml': clusterYaml('a'),
  'clusters/b.yaml': clusterYaml('b'),
  'apps/common/kustomization.yaml': 'resources: [labels.yaml]\n',
  'apps/common/labels.yaml': configMap('common'),
  'apps/base/kustomization.yaml': 'resources: [../common, cm.yaml]\n',
  'apps/base/cm.yaml': configMap('base'),
  'apps/components/tls/kustomization.yaml':
    'apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n',
  'apps/unused/kustomization.yaml': 'resources: [cm.yaml]\n',
  'apps/unused/cm.yaml': configMap('unused'),
  'config/shared.properties': 'level=info\n',
  'bundles/web/bundle.yaml': kustomizeBundle('web'),
  'bundles/web/overlay/kustomization.yaml': 'resources: [../../../apps/base]\n',
  'bundles/api/bundle.yaml': kustomizeBundle('api'),
  'bundles/api/overlay/kustomization.yaml': `resources:
  - ../../../apps/base
components:
  - ../../../apps/components/tls
configMapGenerator:
  - name: settings
    files: [app.properties=../../../config/shared.properties]
`,
  'bundles/solo/bundle.yaml': kustomizeBundle('solo'),
  'bundles/solo/overlay/kustomization.yaml': 'resources: [../base]\n',
  'bundles/solo/base/kustomization.yaml': 'resources: [cm.yaml]\n',
  'bundles/solo/base/cm.yaml': configMap('solo'),
};

describe('kustomize bases anywhere in the fleet repo', () => {
  test('a-shared-base-change-re-runs-exactly-the-builds-of-the-bundles-that-use-it', async () => {
    const tools = new RecordingTools();
    const r = new FleetRenderer({ tools });
    const first = await r.render(repo(FILES), 'r1');
    assert.deepEqual(first.errors, []);
    assert.deepEqual(tools.take(), ['api', 'solo', 'web']);

    const steps: [string, Record<string, string>, string[]][] = [
      ['the shared base', { 'apps/base/cm.yaml': configMap('base', { v: '2' }) }, ['api', 'web']],
      [
        'a base of the base',
        { 'apps/common/labels.yaml': configMap('common', { v: '2' }) },
        ['api', 'web'],
      ],
      ['a component', { 'apps/components/tls/patch.yaml': configMap('tls') }, ['api']],
      ['a generator file', { 'config/shared.properties': 'level=debug\n' }, ['api']],
      ['one overlay', { 'bundles/web/overlay/extra.yaml': configMap('extra') }, ['web']],
      ['a base nobody uses', { 'apps/unused/cm.yaml': configMap('unused', { v: '2' }) }, []],
      ['a file outside every build', { 'README.md': '# fleet\n' }, []],
    ];
    let files = { ...FILES };
    for (const [i, [what, change, expected]] of steps.entries()) {
      files = { ...files, ...change };
      const out = await r.render(repo(files), `r${i + 2}`);
      assert.deepEqual(out.errors, [], what);
      assert.deepEqual(tools.take(), expected, `changing ${what} rebuilds ${expected.join(', ')}`);
      assert.equal(out.stats.toolRuns, expected.length, what);
      assert.equal(out.stats.bundlesPrepared, expected.length, what);
    }
  });

  test('a-build-gets-only-the-files-it-may-read', async () => {
    const tools = new RecordingTools();
    await renderFleet(repo(FILES), 'r', { tools });
    const api = tools.runs.find((req) => req.errorFile.startsWith('bundles/api/'));
    assert.deepEqual([...(api?.files.keys() ?? [])].sort(), [
      'apps/base/cm.yaml',
      'apps/base/kustomization.yaml',
      'apps/common/kustomization.yaml',
      'apps/common/labels.yaml',
      'apps/components/tls/kustomization.yaml',
      'bundles/api/overlay/kustomization.yaml',
      'config/shared.properties',
    ]);
  });

  const broken = (kustomization: string): Record<string, string> => ({
    ...FILES,
    'bundles/web/overlay/kustomization.yaml': kustomization,
  });

  test('a-reference-leaving-the-repository-is-an-error-at-the-kustomization-line', async () => {
    const tools = new RecordingTools();
    const out = await renderFleet(
      repo(broken('namePrefix: x-\nresources:\n  - ../../../apps/base\n  - ../../../../outside\n')),
      'r',
      { tools },
    );
    assert.deepEqual(
      out.errors.map((e) => [e.bundle, e.file, e.line]),
      [['web', 'bundles/web/overlay/kustomization.yaml', 4]],
    );
    assert.match(
      out.errors[0]?.message ?? '',
      /resources\[1\] "..\/..\/..\/..\/outside" leaves the fleet repository/,
    );
    assert.deepEqual(tools.take(), ['api', 'solo'], 'kustomize never runs for it');
  });

  test('remote-bases-are-refused-with-a-clear-error', async () => {
    for (const remote of [
      'https://github.com/example/app//deploy?ref=v1.0.0',
      'github.com/example/app/deploy?ref=main',
      'git@github.com:example/app.git',
    ]) {
      const out = await renderFleet(repo(broken(`resources:\n  - ${remote}\n`)), 'r', {
        tools: new RecordingTools(),
      });
      assert.equal(out.errors.length, 1, remote);
      assert.equal(out.errors[0]?.line, 2);
      assert.match(
        out.errors[0]?.message ?? '',
        /is a remote base: the hub builds Kustomize bundles without network access/,
      );
    }
  });

  test('helm-charts-in-a-kustomization-are-refused-at-their-line-naming-what-to-use', async () => {
    const tools = new RecordingTools();
    const out = await renderFleet(
      repo(
        broken(
          'resources: [../../../apps/base]\nhelmCharts:\n  - name: podinfo\n    repo: https://stefanprodan.github.io/podinfo\n    version: 6.5.0\n',
        ),
      ),
      'r',
      { tools },
    );
    assert.deepEqual(
      out.errors.map((e) => [e.bundle, e.file, e.line]),
      [['web', 'bundles/web/overlay/kustomization.yaml', 2]],
    );
    assert.match(
      out.errors[0]?.message ?? '',
      /helmCharts: Kustomize Helm chart inflation is not supported .*: deploy the chart as a Helm bundle \(spec\.source\.helm\)/,
    );
    assert.deepEqual(tools.take(), ['api', 'solo'], 'kustomize never runs for it');
  });

  test('a-broken-yaml-file-in-a-shared-base-is-named-at-its-line-when-kustomize-fails', async () => {
    // kustomize fails as it does on such a file (a fake of our own ToolRunner).
    const failing: ToolRunner = {
      run: (req) =>
        Promise.reject(
          new ValidationError(
            "kustomize failed (exit 1): Error: accumulating resources from 'broken.yaml': MalformedYAMLError: yaml: line 6: mapping values are not allowed in this context in File: broken.yaml",
            { file: req.errorFile },
          ),
        ),
    };
    const out = await renderFleet(
      repo({
        ...FILES,
        'apps/base/kustomization.yaml': 'resources: [../common, cm.yaml, broken.yaml]\n',
        'apps/base/broken.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  a: b: c\n',
      }),
      'r',
      { tools: failing },
    );
    const web = out.errors.find((e) => e.bundle === 'web');
    assert.deepEqual([web?.file, web?.line], ['apps/base/broken.yaml', 6]);
    assert.match(
      web?.message ?? '',
      /^apps\/base\/broken\.yaml:6: invalid YAML: .*\(bundles\/web\/overlay\/kustomization\.yaml: kustomize failed \(exit 1\): .*broken\.yaml\)$/,
    );
  });

  test('a-symlinked-base-is-an-error-and-an-unused-symlink-is-ignored', async () => {
    const files = new Map(Object.entries(FILES).map(([p, t]) => [p, Buffer.from(t)]));
    const rejected = [
      { path: 'apps/base', reason: 'symbolic links are not allowed in a fleet repo' },
      { path: 'docs/link.md', reason: 'symbolic links are not allowed in a fleet repo' },
    ];
    for (const p of [...files.keys()]) if (p.startsWith('apps/base/')) files.delete(p);
    const out = await renderFleet(new MapRepoTree(files, rejected), 'r', {
      tools: new RecordingTools(),
    });
    assert.deepEqual(out.errors.map((e) => e.bundle).sort(), ['api', 'web']);
    assert.match(
      out.errors[0]?.message ?? '',
      /"..\/..\/..\/apps\/base" is not usable: apps\/base: symbolic links are not allowed/,
    );
  });
});
