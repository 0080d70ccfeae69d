// The renderer in its worker thread: the same result as in-process, caches that last
// across renders, and a worker that runs out of memory fails only that render.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderFleet } from './renderer.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';
import { RenderWorkerError, WorkerRenderer } from './worker-renderer.js';

function fleet(version: number): Record<string, string> {
  const files: Record<string, string> = {
    'bundles/shared/bundle.yaml': bundleYaml(
      'shared',
      '  namespace: shared\n  targets:\n    - clusterSelector: {}\n',
    ),
    'bundles/shared/manifests/cm.yaml': configMap('shared', { v: String(version) }),
    'bundles/percluster/bundle.yaml': bundleYaml(
      'percluster',
      '  namespace: pc\n  substitute: true\n  targets:\n    - clusterSelector: {}\n',
    ),
    'bundles/percluster/manifests/cm.yaml': configMap('id', { name: '${cluster.name}' }),
    'bundles/broken/bundle.yaml': bundleYaml('broken', '  targets:\n    - clusterSelector: {}\n'),
    'bundles/broken/manifests/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata: [\n',
  };
  for (let i = 0; i < 20; i++) files[`clusters/c${i}.yaml`] = clusterYaml(`c${i}`, { env: 'prod' });
  return files;
}

describe('render worker', () => {
  test('the-worker-renders-what-the-in-process-renderer-renders-and-keeps-its-caches', async () => {
    const worker = new WorkerRenderer();
    try {
      const viaWorker = await worker.render(repo(fleet(1)), 'r1');
      const inProcess = await renderFleet(repo(fleet(1)), 'r1');
      assert.deepEqual(viaWorker.errors, inProcess.errors);
      assert.equal(viaWorker.errors.length, 1);
      assert.equal(
        JSON.stringify([...viaWorker.clusters]),
        JSON.stringify([...inProcess.clusters]),
      );
      assert.deepEqual(viaWorker.held, inProcess.held);

      // Identical states for many clusters still share one object after the crossing.
      const a = viaWorker.clusters.get('c0')?.bundles.find((b) => b.name === 'shared');
      const b = viaWorker.clusters.get('c1')?.bundles.find((b) => b.name === 'shared');
      assert.ok(a !== undefined && a === b);

      // One shared bundle changed: only it is prepared and rendered again, in the worker.
      const next = await worker.render(repo(fleet(2)), 'r2');
      assert.equal(next.stats.bundlesPrepared, 1);
      assert.equal(next.stats.bundleRenders, 1);
      assert.equal(
        next.stats.bundleCacheHits,
        39,
        'every per-cluster rendering, and shared for 19 more',
      );
      const shared = next.clusters.get('c3')?.bundles.find((x) => x.name === 'shared');
      assert.deepEqual(shared?.objects[0]?.data, { v: '2' });
    } finally {
      await worker.stop();
    }
  });

  test('a-render-that-exhausts-the-worker-heap-fails-alone-and-the-next-render-gets-a-fresh-worker', async () => {
    const worker = new WorkerRenderer({
      maxHeapBytes: 16 * 1024 * 1024,
      maxBundleDocuments: 10_000_000,
      maxBundleObjects: 10_000_000,
      maxClusterObjects: 10_000_000,
      maxClusterBytes: 1024 * 1024 * 1024,
    });
    try {
      const huge = {
        'clusters/c1.yaml': clusterYaml('c1'),
        'bundles/huge/bundle.yaml': bundleYaml('huge', '  targets:\n    - clusterSelector: {}\n'),
        // 200 files of 1,000 documents: the heap fills through many separate allocations.
        // One file of 200,000 documents fills it through one growing array, and then V8
        // can abort the whole process instead of ending the worker (a Node.js limit of
        // resourceLimits, nodejs/node#47224; 1 run in 10 here): see docs/decisions.md.
        ...Object.fromEntries(
          Array.from({ length: 200 }, (_, f) => [
            `bundles/huge/manifests/cm-${f}.yaml`,
            Array.from({ length: 1_000 }, (_, i) =>
              configMap(`cm-${f}-${i}`, { k: 'v'.repeat(40) }),
            ).join('---\n'),
          ]),
        ),
      };
      await assert.rejects(worker.render(repo(huge), 'r1'), (err: unknown) => {
        assert.ok(err instanceof RenderWorkerError);
        assert.equal(err.code, 'TOO_LARGE');
        assert.match(
          err.message,
          /ran out of memory.*16 MiB of heap \(render\.workerMaxHeapBytes\)/,
        );
        return true;
      });
      const ok = await worker.render(repo(fleet(1)), 'r2');
      assert.equal(ok.clusters.size, 20);
    } finally {
      await worker.stop();
    }
  });

  test('a-stopped-renderer-refuses-to-render', async () => {
    const worker = new WorkerRenderer();
    await worker.stop();
    await assert.rejects(worker.render(repo(fleet(1)), 'r1'), RenderWorkerError);
  });
});
