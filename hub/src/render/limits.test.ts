// What a hostile or careless commit can make the renderer do: floods of documents and
// objects stop at their limits, and a failure of any kind while reading one file is that
// file's error; the other bundles of the commit render as usual.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FleetRenderer, renderFleet } from './renderer.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';
import type { ToolRunner } from './tools.js';

const everyone = '  namespace: ns\n  targets:\n    - clusterSelector: {}\n';
const good = {
  'clusters/c1.yaml': clusterYaml('c1'),
  'bundles/good/bundle.yaml': bundleYaml('good', everyone),
  'bundles/good/manifests/cm.yaml': configMap('good'),
};

function bundlesOf(out: Awaited<ReturnType<typeof renderFleet>>, cluster = 'c1'): string[] {
  return (out.clusters.get(cluster)?.bundles ?? []).map((b) => b.name);
}

function configMaps(n: number, prefix = 'cm'): string {
  return Array.from({ length: n }, (_, i) => configMap(`${prefix}-${i}`)).join('---\n');
}

const ALIAS_BOMB = `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
`;

describe('limits on documents and objects', () => {
  test('empty-documents-past-the-bundle-limit-are-that-bundles-error-with-file-and-line', async () => {
    // The report's 1.2 MB file of 300,000 empty documents.
    const out = await renderFleet(
      repo({
        ...good,
        'bundles/flood/bundle.yaml': bundleYaml('flood', everyone),
        'bundles/flood/manifests/empty.yaml': '---\n'.repeat(300_000),
      }),
      'r',
    );
    assert.equal(out.errors.length, 1);
    const e = out.errors[0];
    assert.equal(e?.bundle, 'flood');
    assert.equal(e?.file, 'bundles/flood/manifests/empty.yaml');
    assert.equal(e?.line, 10_001);
    assert.match(e?.message ?? '', /more than 10000 YAML documents \(render\.maxBundleDocuments\)/);
    assert.deepEqual(bundlesOf(out), ['good']);
    assert.deepEqual(out.held.get('c1'), ['flood']);
  });

  test('objects-past-the-bundle-limit-are-that-bundles-error-naming-the-file-that-crossed-it', async () => {
    const out = await renderFleet(
      repo({
        ...good,
        'bundles/many/bundle.yaml': bundleYaml('many', everyone),
        'bundles/many/manifests/a.yaml': configMaps(3_000, 'a'),
        'bundles/many/manifests/b.yaml': configMaps(3_000, 'b'),
      }),
      'r',
    );
    assert.equal(out.errors.length, 1);
    const e = out.errors[0];
    assert.equal(e?.bundle, 'many');
    assert.equal(e?.file, 'bundles/many/manifests/b.yaml');
    assert.match(e?.message ?? '', /more than 5000 objects \(render\.maxBundleObjects\)/);
    assert.deepEqual(bundlesOf(out), ['good']);
  });

  test('a-bundle-that-does-not-fit-the-cluster-limit-is-held-there-and-the-others-deploy', async () => {
    const files = (bObjects: number): Record<string, string> => ({
      'clusters/c1.yaml': clusterYaml('c1'),
      'bundles/a/bundle.yaml': bundleYaml('a', everyone),
      'bundles/a/manifests/m.yaml': configMaps(4, 'a'),
      'bundles/b/bundle.yaml': bundleYaml('b', everyone),
      'bundles/b/manifests/m.yaml': configMaps(bObjects, 'b'),
      'bundles/c/bundle.yaml': bundleYaml('c', everyone),
      'bundles/c/manifests/m.yaml': configMaps(1, 'c'),
    });
    const renderer = new FleetRenderer({ maxClusterObjects: 10 });
    const first = await renderer.render(repo(files(5)), 'r1');
    assert.deepEqual(first.errors, []);
    assert.deepEqual(bundlesOf(first), ['a', 'b', 'c']);

    // b grows past what is left: it keeps its previous rendering, a and c are updated.
    const second = await renderer.render(repo(files(8)), 'r2');
    assert.equal(second.errors.length, 1);
    const e = second.errors[0];
    assert.equal(e?.cluster, 'c1');
    assert.equal(e?.bundle, 'b');
    assert.equal(e?.file, 'bundles/b/bundle.yaml');
    assert.match(
      e?.message ?? '',
      /^bundles\/b\/bundle\.yaml: its new rendering has 8 objects, which would bring cluster "c1" to 12, over render\.maxClusterObjects \(10\)/,
    );
    assert.deepEqual(second.held.get('c1'), ['b']);
    const b = second.clusters.get('c1')?.bundles.find((x) => x.name === 'b');
    assert.equal(b?.objects.length, 5, 'b stays at its previous rendering');
    assert.deepEqual(bundlesOf(second), ['a', 'b', 'c']);

    // A fresh renderer has no previous rendering of b: b is left out (held), the others deploy.
    const cold = await new FleetRenderer({ maxClusterObjects: 10 }).render(repo(files(8)), 'r2');
    assert.deepEqual(bundlesOf(cold), ['a', 'c']);
    assert.deepEqual(cold.clusters.get('c1')?.held, ['b']);
  });
});

describe('a parser failure of any kind is its file’s error', () => {
  test('an-alias-bomb-in-a-manifest-is-that-files-error-and-other-bundles-render', async () => {
    const out = await renderFleet(
      repo({
        ...good,
        'bundles/bomb/bundle.yaml': bundleYaml('bomb', everyone),
        'bundles/bomb/manifests/bomb.yaml': ALIAS_BOMB,
      }),
      'r',
    );
    assert.equal(out.errors.length, 1);
    assert.equal(out.errors[0]?.bundle, 'bomb');
    assert.equal(out.errors[0]?.file, 'bundles/bomb/manifests/bomb.yaml');
    assert.match(
      out.errors[0]?.message ?? '',
      /^bundles\/bomb\/manifests\/bomb\.yaml:1: invalid YAML: Excessive alias count/,
    );
    assert.deepEqual(bundlesOf(out), ['good']);
  });

  test('an-alias-bomb-in-bundle-yaml-or-a-cluster-file-fails-only-that-bundle-or-cluster', async () => {
    const out = await renderFleet(
      repo({
        ...good,
        'clusters/c2.yaml': clusterYaml('c2'),
        'clusters/bad.yaml': `${clusterYaml('bad')}${ALIAS_BOMB.replace(/^/gm, '# ')}spec:\n  vars:\n${ALIAS_BOMB.replace(/^/gm, '    ')}`,
        'bundles/bomb/bundle.yaml': `${bundleYaml('bomb', everyone)}  drift:\n${ALIAS_BOMB.replace(/^/gm, '    ')}`,
        'bundles/bomb/manifests/cm.yaml': configMap('x'),
      }),
      'r',
    );
    const byFile = new Map(out.errors.map((e) => [e.file, e]));
    assert.match(
      byFile.get('clusters/bad.yaml')?.message ?? '',
      /invalid YAML: Excessive alias count/,
    );
    assert.equal(byFile.get('clusters/bad.yaml')?.cluster, 'bad');
    assert.match(
      byFile.get('bundles/bomb/bundle.yaml')?.message ?? '',
      /invalid YAML: Excessive alias count/,
    );
    assert.equal(byFile.get('bundles/bomb/bundle.yaml')?.bundle, 'bomb');
    assert.equal(out.errors.length, 2);
    assert.deepEqual(bundlesOf(out, 'c1'), ['good']);
    assert.deepEqual(bundlesOf(out, 'c2'), ['good']);
    assert.deepEqual(out.brokenClusters, ['bad']);
  });

  test('deeply-nested-yaml-and-a-flood-of-documents-in-bundle-yaml-are-that-files-errors', async () => {
    const out = await renderFleet(
      repo({
        ...good,
        'bundles/deep/bundle.yaml': bundleYaml('deep', everyone),
        'bundles/deep/manifests/deep.yaml': `${'['.repeat(100_000)}${']'.repeat(100_000)}\n`,
        'bundles/flood/bundle.yaml': `${'---\n'.repeat(300_000)}${bundleYaml('flood', everyone)}`,
        'bundles/flood/manifests/cm.yaml': configMap('x'),
      }),
      'r',
    );
    const byBundle = new Map(out.errors.map((e) => [e.bundle, e]));
    assert.equal(byBundle.get('deep')?.file, 'bundles/deep/manifests/deep.yaml');
    assert.match(byBundle.get('deep')?.message ?? '', /invalid YAML/);
    assert.match(
      byBundle.get('flood')?.message ?? '',
      /^bundles\/flood\/bundle\.yaml: expected one YAML document, found over 100/,
    );
    assert.equal(out.errors.length, 2);
    assert.deepEqual(bundlesOf(out), ['good']);
  });

  test('an-unexpected-failure-while-preparing-a-bundle-is-that-bundles-error-not-the-commits', async () => {
    // Not a ValidationError: what a library bug tripped by hostile content would throw.
    const tools: ToolRunner = {
      run: async () => {
        throw new TypeError("Cannot read properties of undefined (reading 'kind')");
      },
    };
    const out = await new FleetRenderer({ tools }).render(
      repo({
        ...good,
        'bundles/k/bundle.yaml': bundleYaml(
          'k',
          `  source: { kustomize: { path: . } }\n${everyone}`,
        ),
        'bundles/k/kustomization.yaml': 'resources: []\n',
      }),
      'r',
    );
    assert.equal(out.errors.length, 1);
    assert.equal(out.errors[0]?.bundle, 'k');
    assert.equal(out.errors[0]?.file, 'bundles/k/bundle.yaml');
    assert.match(
      out.errors[0]?.message ?? '',
      /cannot render: Cannot read properties of undefined/,
    );
    assert.deepEqual(bundlesOf(out), ['good']);
  });
});
