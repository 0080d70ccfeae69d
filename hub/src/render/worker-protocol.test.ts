// What crosses between the hub and its render worker: bundle contents once, in batches
// of bounded size; everything else as it is.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BATCH_OBJECTS,
  ResultDecoder,
  ResultEncoder,
  packTree,
  unpackTree,
} from './worker-protocol.js';
import { MapRepoTree } from '../source/tree.js';
import { renderFleet } from './renderer.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';

function fleet(version: number, clusters = 30): Record<string, string> {
  const files: Record<string, string> = {
    'bundles/big/bundle.yaml': bundleYaml(
      'big',
      '  namespace: big\n  substitute: true\n  targets:\n    - clusterSelector: {}\n',
    ),
    'bundles/big/manifests/cms.yaml': Array.from({ length: 100 }, (_, i) =>
      configMap(`cm-${i}`, { cluster: '${cluster.name}' }),
    ).join('---\n'),
    'bundles/shared/bundle.yaml': bundleYaml(
      'shared',
      '  namespace: shared\n  targets:\n    - clusterSelector: {}\n',
    ),
    'bundles/shared/manifests/cm.yaml': configMap('shared', { v: String(version) }),
  };
  for (let i = 0; i < clusters; i++) files[`clusters/c${i}.yaml`] = clusterYaml(`c${i}`);
  return files;
}

describe('render worker protocol', () => {
  test('bundle-contents-cross-once-in-bounded-batches-and-the-result-is-rebuilt-whole', async () => {
    const encoder = new ResultEncoder();
    const decoder = new ResultDecoder();
    const first = await renderFleet(repo(fleet(1)), 'r1');
    const a = encoder.encode(first);
    // 30 per-cluster bundles of 100 objects and one shared bundle.
    assert.equal(a.batches.flat().length, 31);
    for (const batch of a.batches) {
      const objects = batch.reduce((n, b) => n + b.objects.length, 0);
      assert.ok(objects <= BATCH_OBJECTS || batch.length === 1);
    }
    for (const batch of a.batches) decoder.batch(structuredClone(batch));
    const got = decoder.finish(structuredClone(a.wire));
    assert.equal(JSON.stringify([...got.clusters]), JSON.stringify([...first.clusters]));
    assert.deepEqual(got.errors, first.errors);
    assert.deepEqual(got.stats, first.stats);
    const shared = (c: string) => got.clusters.get(c)?.bundles.find((b) => b.name === 'shared');
    assert.ok(shared('c0') === shared('c29'), 'equal bundles are one object on the hub too');

    // Next revision: only the changed shared bundle crosses; the rest go by digest.
    const second = await renderFleet(repo(fleet(2)), 'r2');
    const b = encoder.encode(second);
    assert.deepEqual(
      b.batches.flat().map((x) => x.name),
      ['shared'],
    );
    for (const batch of b.batches) decoder.batch(structuredClone(batch));
    const next = decoder.finish(structuredClone(b.wire));
    assert.equal(JSON.stringify([...next.clusters]), JSON.stringify([...second.clusters]));
    assert.equal(next.revision, 'r2');
  });

  test('a-result-naming-a-bundle-the-hub-never-received-is-refused', async () => {
    const result = await renderFleet(repo(fleet(1, 2)), 'r1');
    const { wire } = new ResultEncoder().encode(result);
    assert.throws(() => new ResultDecoder().finish(wire), /never arrived/);
  });

  test('a-packed-tree-unpacks-to-the-same-files-and-rejected-entries', () => {
    const files = repo({ 'clusters/a.yaml': 'a: 1\n', 'bundles/x/m/e.yaml': '', 'z.txt': 'zz' });
    const rejected = [{ path: 'bundles/x/link.yaml', reason: 'symbolic links are not allowed' }];
    const tree = new MapRepoTree(
      new Map(files.paths().map((p) => [p, files.read(p) as Buffer])),
      rejected,
    );
    const back = unpackTree(structuredClone(packTree(tree)));
    assert.deepEqual(back.paths(), tree.paths());
    for (const p of tree.paths()) assert.deepEqual(back.read(p), tree.read(p));
    assert.deepEqual(back.rejected, rejected);
  });
});
