// The renderer in its worker process: the same result as in-process, caches that last
// across renders, a bundle filling the heap is that bundle's error, and a worker that
// runs out of memory fails only that render, never the process that asked for it.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { renderFleet } from './renderer.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';
import { RenderWorkerError, WorkerRenderer, exitReason } from './worker-renderer.js';

const MiB = 1024 * 1024;
const NO_LIMITS = {
  maxBundleDocuments: 10_000_000,
  maxBundleObjects: 10_000_000,
  maxClusterObjects: 10_000_000,
  maxClusterBytes: 1024 * MiB,
};

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

  // The shape that could abort the whole hub while the worker was a thread: one file of
  // 200,000 documents, document limits off, fills the heap through one growing array
  // (nodejs/node#47224). The heap guard stops reading it at half the heap.
  test('a-bundle-filling-the-worker-heap-is-that-bundles-error-with-its-file-and-the-others-render', async () => {
    const worker = new WorkerRenderer({ maxHeapBytes: 64 * MiB, ...NO_LIMITS });
    try {
      const huge = {
        ...fleet(1),
        'bundles/huge/bundle.yaml': bundleYaml('huge', '  targets:\n    - clusterSelector: {}\n'),
        'bundles/huge/manifests/cm.yaml': Array.from({ length: 200_000 }, (_, i) =>
          configMap(`cm-${i}`, { k: 'v'.repeat(40) }),
        ).join('---\n'),
      };
      const out = await worker.render(repo(huge), 'r1');
      const heap = out.errors.filter((e) => e.bundle === 'huge');
      assert.equal(heap.length, 1);
      assert.equal(heap[0]?.file, 'bundles/huge/manifests/cm.yaml');
      assert.match(
        heap[0]?.message ?? '',
        /^bundles\/huge\/manifests\/cm\.yaml:\d+: reading this bundle took the render worker's heap past half its limit \(\d+ of 64 MiB in use; render\.workerMaxHeapBytes\)/,
      );
      const c0 = out.clusters.get('c0')?.bundles.map((b) => b.name);
      assert.deepEqual(c0, ['percluster', 'shared'], 'the other bundles render');
      const ok = await worker.render(repo(fleet(2)), 'r2');
      assert.equal(ok.clusters.size, 20);
    } finally {
      await worker.stop();
    }
  });

  // What the heap guard cannot see: one document growing one array past the heap limit.
  // In a worker thread this aborted the whole process (6 runs of 6); in the worker
  // process it ends only the worker.
  test('a-render-that-exhausts-the-worker-heap-in-one-document-fails-alone-and-the-next-render-gets-a-fresh-worker', async () => {
    const worker = new WorkerRenderer({ maxHeapBytes: 16 * MiB, ...NO_LIMITS });
    try {
      const items = Array.from({ length: 2_000_000 }, (_, i) => `    - x${i}\n`).join('');
      const huge = {
        'clusters/c1.yaml': clusterYaml('c1'),
        'bundles/huge/bundle.yaml': bundleYaml('huge', '  targets:\n    - clusterSelector: {}\n'),
        'bundles/huge/manifests/cm.yaml': `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  list:\n${items}`,
      };
      await assert.rejects(worker.render(repo(huge), 'r1'), (err: unknown) => {
        assert.ok(err instanceof RenderWorkerError);
        assert.equal(err.code, 'TOO_LARGE');
        assert.match(
          err.message,
          /^rendering ran out of memory: the render worker may use 16 MiB of heap \(render\.workerMaxHeapBytes\)$/,
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

  test('a-worker-that-ended-says-why-out-of-memory-killed-or-crashed', () => {
    const oom = exitReason(
      null,
      'SIGABRT',
      'FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory\n 1: 0xb78db3 node::OOMErrorHandler',
      512,
    );
    assert.equal(oom.code, 'TOO_LARGE');
    assert.match(oom.message, /may use 512 MiB of heap \(render\.workerMaxHeapBytes\)/);
    const killed = exitReason(null, 'SIGKILL', '', 512);
    assert.equal(killed.code, 'TOO_LARGE');
    assert.match(killed.message, /killed \(SIGKILL/);
    const crashed = exitReason(1, null, 'file:///x.js:1\nError: boom\n', 512);
    assert.equal(crashed.code, 'UNAVAILABLE');
    assert.equal(crashed.message, 'the render worker exited (code 1): Error: boom');
  });
});
