// Entry of the render worker thread: one FleetRenderer, kept for the thread's life so
// its caches (parsed bundles, kustomize and helm output, rendered bundles) serve every
// render. Started by WorkerRenderer; not imported anywhere else.
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { errorMessage } from '@flotilla/common';
import type { RenderResult } from './types.js';
import { FleetRenderer } from './renderer.js';
import { ResultEncoder, unpackTree } from './worker-protocol.js';
import type { BatchAck, RenderReply, RenderRequest, WorkerSettings } from './worker-protocol.js';

const port: MessagePort | null = parentPort;
if (!port) throw new Error('render-worker.js runs as a worker thread (WorkerRenderer)');
const settings = workerData as WorkerSettings;
const renderer = new FleetRenderer(settings.options);
const encoder = new ResultEncoder();
let acked: (() => void) | undefined;
// Replies go out one render at a time, in request order (FleetRenderer renders in call
// order too), so the encoder and the hub's decoder see results in the same order.
let sending: Promise<void> = Promise.resolve();

function reply(out: MessagePort, id: number, result: RenderResult): Promise<void> {
  const { batches, wire } = encoder.encode(result);
  return (async () => {
    for (const bundles of batches) {
      const taken = new Promise<void>((resolve) => (acked = resolve));
      out.postMessage({ id, bundles } satisfies RenderReply);
      await taken;
    }
    out.postMessage({ id, result: wire } satisfies RenderReply);
  })();
}

port.on('message', (msg: RenderRequest | BatchAck) => {
  if ('ack' in msg) {
    acked?.();
    return;
  }
  const done = renderer.render(unpackTree(msg.tree), ...msg.inputs);
  // Handled below, maybe only after earlier replies are out: not an unhandled rejection.
  done.catch(() => undefined);
  sending = sending.then(async () => {
    try {
      await reply(port, msg.id, await done);
    } catch (err) {
      // A failed render, or a result that cannot cross: either way, this request's answer.
      const error = { name: err instanceof Error ? err.name : 'Error', message: errorMessage(err) };
      port.postMessage({ id: msg.id, error } satisfies RenderReply);
    }
  });
});
