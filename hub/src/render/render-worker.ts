// Entry of the render worker, a child process of the hub (WorkerRenderer forks it; not
// imported anywhere else): one FleetRenderer, kept for the process's life so its caches
// (parsed bundles, kustomize and helm output, rendered bundles) serve every render. It
// ends when the hub does: a closed IPC channel means nobody will ask for a render again.
import { errorMessage } from '@flotilla/common';
import type { RenderResult } from './types.js';
import { FleetRenderer } from './renderer.js';
import { setHeapGuardLimit } from './heap-guard.js';
import { ResultEncoder, unpackTree } from './worker-protocol.js';
import type { RenderReply, WorkerRequest } from './worker-protocol.js';

if (!process.send) throw new Error('render-worker.js runs as a child process (WorkerRenderer)');
const toHub = (msg: RenderReply): void => {
  process.send?.(msg);
};
let renderer: FleetRenderer | undefined;
const encoder = new ResultEncoder();
let acked: (() => void) | undefined;
// Replies go out one render at a time, in request order (FleetRenderer renders in call
// order too), so the encoder and the hub's decoder see results in the same order.
let sending: Promise<void> = Promise.resolve();

function reply(id: number, result: RenderResult): Promise<void> {
  const { batches, wire } = encoder.encode(result);
  return (async () => {
    for (const bundles of batches) {
      const taken = new Promise<void>((resolve) => (acked = resolve));
      toHub({ id, bundles });
      await taken;
    }
    toHub({ id, result: wire });
  })();
}

process.on('disconnect', () => process.exit(0));
process.on('message', (msg: WorkerRequest) => {
  if ('settings' in msg) {
    setHeapGuardLimit(msg.settings.heapBytes);
    renderer = new FleetRenderer(msg.settings.options);
    return;
  }
  if ('ack' in msg) {
    acked?.();
    return;
  }
  const done = (renderer ??= new FleetRenderer()).render(unpackTree(msg.tree), ...msg.inputs);
  // Handled below, maybe only after earlier replies are out: not an unhandled rejection.
  done.catch(() => undefined);
  sending = sending.then(async () => {
    try {
      await reply(msg.id, await done);
    } catch (err) {
      // A failed render, or a result that cannot cross: either way, this request's answer.
      const error = { name: err instanceof Error ? err.name : 'Error', message: errorMessage(err) };
      toHub({ id: msg.id, error });
    }
  });
});
