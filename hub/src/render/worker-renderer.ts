// The hub's renderer: a FleetRenderer in a worker thread. Parsing a commit is CPU work
// that can take seconds for a hostile (or just large) fleet repo; on the hub's own event
// loop it would hold every agent stream, heartbeat and query until it finished. In the
// worker it holds nothing but its own thread, and a render that exhausts the worker's
// heap stops only the worker: that render fails, the hub keeps serving the last good
// desired states, and the next render starts a fresh worker.
import { Worker } from 'node:worker_threads';
import { FlotillaError, LogFields } from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import { ResultDecoder, packTree } from './worker-protocol.js';
import type {
  BatchAck,
  RenderInputs,
  RenderReply,
  RenderRequest,
  WorkerSettings,
} from './worker-protocol.js';
import type { RenderOptions, RenderResult } from './types.js';

/** Default of WorkerRendererOptions.maxHeapBytes: 1 GiB (10,000 clusters of the render benchmark's shape fit). */
export const DEFAULT_RENDER_WORKER_HEAP = 1024 * 1024 * 1024;

/** Options of WorkerRenderer: the renderer's own, plus the worker's. */
export interface WorkerRendererOptions extends RenderOptions {
  logger?: Logger;
  /** V8 heap limit of the worker (old generation), bytes (default DEFAULT_RENDER_WORKER_HEAP). */
  maxHeapBytes?: number;
}

/** A render that did not finish because its worker stopped (out of memory, crash, stop()). */
export class RenderWorkerError extends FlotillaError {
  constructor(message: string, outOfMemory: boolean, cause?: unknown) {
    super(outOfMemory ? 'TOO_LARGE' : 'UNAVAILABLE', message, {
      retryable: !outOfMemory,
      cause,
    });
  }
}

interface Pending {
  resolve(r: RenderResult): void;
  reject(e: Error): void;
}

/** Renders in a worker thread; same contract as FleetRenderer.render. */
export class WorkerRenderer {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private readonly decoder = new ResultDecoder();
  private nextId = 1;
  private stopped = false;
  private readonly heapMb: number;

  constructor(private readonly opts: WorkerRendererOptions = {}) {
    this.heapMb = Math.max(
      16,
      Math.round((opts.maxHeapBytes ?? DEFAULT_RENDER_WORKER_HEAP) / 1024 / 1024),
    );
  }

  /**
   * Renders a tree in the worker. The inputs after the tree cross as plain data, so they
   * must be structured-cloneable (strings, numbers, arrays, Maps, plain objects).
   * Renders run one at a time in call order, like FleetRenderer's.
   */
  render(tree: RepoTree, ...inputs: RenderInputs): Promise<RenderResult> {
    if (this.stopped) return Promise.reject(new RenderWorkerError('renderer stopped', false));
    const worker = this.worker ?? this.start();
    const id = this.nextId++;
    const req: RenderRequest = { id, tree: packTree(tree), inputs };
    return new Promise<RenderResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage(req, [req.tree.data]);
    }).then((result) => {
      this.log(result);
      return result;
    });
  }

  /** Stops the worker; renders in flight fail with RenderWorkerError. */
  async stop(): Promise<void> {
    this.stopped = true;
    const w = this.worker;
    if (w) await w.terminate();
  }

  private start(): Worker {
    const settings: WorkerSettings = { options: rendererOptions(this.opts) };
    const worker = new Worker(new URL('./render-worker.js', import.meta.url), {
      workerData: settings,
      resourceLimits: { maxOldGenerationSizeMb: this.heapMb },
    });
    let failure: RenderWorkerError | undefined;
    worker.on('message', (reply: RenderReply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      if ('bundles' in reply) {
        this.decoder.batch(reply.bundles);
        worker.postMessage({ ack: reply.id } satisfies BatchAck);
        return;
      }
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if ('error' in reply) {
        this.decoder.reset();
        p.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name }));
        return;
      }
      try {
        p.resolve(this.decoder.finish(reply.result));
      } catch (err) {
        // The two sides no longer agree on what the hub holds: start over with a new worker.
        p.reject(err as Error);
        void worker.terminate();
      }
    });
    worker.on('error', (err: Error & { code?: string }) => {
      failure =
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new RenderWorkerError(
              `rendering ran out of memory: the render worker may use ${this.heapMb} MiB of heap (render.workerMaxHeapBytes)`,
              true,
              err,
            )
          : new RenderWorkerError(`the render worker failed: ${err.message}`, false, err);
    });
    worker.on('exit', (code) => {
      if (this.worker === worker) this.worker = undefined;
      const reason =
        failure ??
        new RenderWorkerError(
          this.stopped ? 'renderer stopped' : `the render worker exited (code ${code})`,
          false,
        );
      if (!this.stopped)
        this.opts.logger?.error(
          { err: reason.message },
          'render worker stopped; next render starts a new one',
        );
      for (const p of this.pending.values()) p.reject(reason);
      this.pending.clear();
      this.decoder.reset();
    });
    worker.unref();
    this.worker = worker;
    return worker;
  }

  private log(result: RenderResult): void {
    this.opts.logger?.info(
      {
        [LogFields.revision]: result.revision,
        clusters: result.clusters.size,
        errors: result.errors.length,
        ...result.stats,
      },
      'rendered fleet',
    );
  }
}

// The renderer's options without the host-only ones (a logger cannot cross threads).
function rendererOptions(opts: WorkerRendererOptions): RenderOptions {
  const { logger: _logger, maxHeapBytes: _heap, ...rest } = opts;
  return rest;
}
