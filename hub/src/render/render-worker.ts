// Entry of the render worker thread: one FleetRenderer, kept for the thread's life so
// its caches (parsed bundles, kustomize and helm output, rendered bundles) serve every
// render. Started by WorkerRenderer; not imported anywhere else.
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '@flotilla/common';
import { FleetRenderer } from './renderer.js';
import { ResultEncoder, unpackTree } from './worker-protocol.js';
import type { RenderReply, RenderRequest, WorkerSettings } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('render-worker.js runs as a worker thread (WorkerRenderer)');
const settings = workerData as WorkerSettings;
const renderer = new FleetRenderer(settings.options);
const encoder = new ResultEncoder();

// FleetRenderer queues renders in call order, so replies leave in request order.
port.on('message', (req: RenderRequest) => {
  renderer.render(unpackTree(req.tree), ...req.inputs).then(
    (result) => {
      const { batches, wire } = encoder.encode(result);
      for (const bundles of batches)
        port.postMessage({ id: req.id, bundles } satisfies RenderReply);
      port.postMessage({ id: req.id, result: wire } satisfies RenderReply);
    },
    (err: unknown) =>
      port.postMessage({
        id: req.id,
        error: { name: err instanceof Error ? err.name : 'Error', message: errorMessage(err) },
      } satisfies RenderReply),
  );
});
