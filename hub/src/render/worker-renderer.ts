// The hub's renderer: a FleetRenderer in a child process of the hub (the render worker).
// Parsing a commit is CPU work that can take seconds for a hostile (or just large) fleet
// repo; on the hub's own event loop it would hold every agent stream, heartbeat and
// query until it finished. In the worker it holds nothing of the hub's.
//
// A process, not a worker thread: a render that exhausts a worker thread's heap usually
// ends only the thread, but when the heap fills through one growing array V8 can abort
// the whole process (nodejs/node#47224), and that process would be the hub. A process of
// its own, with its own heap limit, can only abort itself: that render fails with an
// error naming the limit, the hub keeps serving the last good desired states, and the
// next render starts a fresh worker. (The render also checks its heap while parsing, so
// most such renders fail one bundle with its file instead: heap-guard.ts.)
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { FlotillaError, LogFields } from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import { ResultDecoder, packTree } from './worker-protocol.js';
import type {
  BatchAck,
  RenderInputs,
  RenderReply,
  RenderRequest,
  WorkerRequest,
  WorkerSettings,
} from './worker-protocol.js';
import type { RenderOptions, RenderResult } from './types.js';

/** Default of WorkerRendererOptions.maxHeapBytes: 1 GiB (10,000 clusters of the render benchmark's shape fit). */
export const DEFAULT_RENDER_WORKER_HEAP = 1024 * 1024 * 1024;

/** Bytes of the worker's last stderr output kept to say why it ended. */
const STDERR_TAIL_BYTES = 16 * 1024;

/** Options of WorkerRenderer: the renderer's own, plus the worker's. */
export interface WorkerRendererOptions extends RenderOptions {
  logger?: Logger;
  /** V8 heap limit of the worker process (old generation), bytes (default DEFAULT_RENDER_WORKER_HEAP). */
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

/** Renders in a child process (the render worker); same contract as FleetRenderer.render. */
export class WorkerRenderer {
  private worker: ChildProcess | undefined;
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
      if (this.pending.size === 1) hold(worker, true);
      send(worker, req);
    }).then((result) => {
      this.log(result);
      return result;
    });
  }

  /** Stops the worker; renders in flight fail with RenderWorkerError. */
  async stop(): Promise<void> {
    this.stopped = true;
    const w = this.worker;
    if (!w || w.exitCode !== null || w.signalCode !== null) return;
    const exited = new Promise<void>((r) => w.once('exit', () => r()));
    hold(w, true);
    w.kill('SIGKILL');
    await exited;
  }

  private start(): ChildProcess {
    const settings: WorkerSettings = {
      options: rendererOptions(this.opts),
      heapBytes: this.heapMb * 1024 * 1024,
    };
    const worker = fork(new URL('./render-worker.js', import.meta.url), [], {
      serialization: 'advanced',
      // Only the flags the worker needs: the hub's own (a heap size, --test under the test
      // runner) are not the worker's.
      execArgv: [
        `--max-old-space-size=${this.heapMb}`,
        '--expose-gc',
        ...process.execArgv.filter((a) => a === '--enable-source-maps'),
      ],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    worker.stderr?.setEncoding('utf8');
    worker.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES);
    });
    // Sends to a worker that has just ended fail here; its 'exit' fails the renders.
    worker.on('error', () => undefined);
    worker.on('message', (reply: RenderReply) => this.take(worker, reply));
    worker.on('exit', (code, signal) => {
      if (this.worker === worker) this.worker = undefined;
      const reason = this.stopped
        ? new RenderWorkerError('renderer stopped', false)
        : (killedFor.get(worker) ?? exitReason(code, signal, stderr, this.heapMb));
      if (!this.stopped)
        this.opts.logger?.error(
          { err: reason.message },
          'render worker stopped; next render starts a new one',
        );
      for (const p of this.pending.values()) p.reject(reason);
      this.pending.clear();
      this.decoder.reset();
    });
    send(worker, { settings });
    hold(worker, false);
    this.worker = worker;
    return worker;
  }

  private take(worker: ChildProcess, reply: RenderReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    if ('bundles' in reply) {
      this.decoder.batch(reply.bundles);
      send(worker, { ack: reply.id } satisfies BatchAck);
      return;
    }
    this.pending.delete(reply.id);
    if (this.pending.size === 0) hold(worker, false);
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
      killedFor.set(
        worker,
        new RenderWorkerError(`the render worker was restarted: ${String(err)}`, false),
      );
      worker.kill('SIGKILL');
    }
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

// Workers this side killed, and why (their exit then says so, not exitReason's guess).
const killedFor = new WeakMap<ChildProcess, RenderWorkerError>();

function send(worker: ChildProcess, msg: WorkerRequest): void {
  if (worker.connected) worker.send(msg);
}

// An idle worker does not keep the hub's event loop alive; one with renders in flight does.
function hold(worker: ChildProcess, busy: boolean): void {
  const channel = worker.channel as { ref(): void; unref(): void } | null | undefined;
  if (busy) {
    worker.ref();
    channel?.ref();
  } else {
    worker.unref();
    channel?.unref();
  }
}

/**
 * Why the worker ended. V8 reports a full heap only on stderr before it aborts (there is
 * no exit code for it), so its message is what tells a render too large for the heap
 * from a crash; a SIGKILL nobody here sent is most often the kernel's OOM killer.
 */
export function exitReason(
  code: number | null,
  signal: NodeJS.Signals | null,
  stderr: string,
  heapMb: number,
): RenderWorkerError {
  if (/heap out of memory|Reached heap limit/.test(stderr))
    return new RenderWorkerError(
      `rendering ran out of memory: the render worker may use ${heapMb} MiB of heap (render.workerMaxHeapBytes)`,
      true,
    );
  if (signal === 'SIGKILL')
    return new RenderWorkerError(
      'the render worker was killed (SIGKILL: the pod or machine may have run out of memory)',
      true,
    );
  const last = stderr.trim().split('\n').pop()?.slice(0, 300);
  return new RenderWorkerError(
    `the render worker exited (${signal ?? `code ${code}`})${last ? `: ${last}` : ''}`,
    false,
  );
}

// The renderer's options without the host-only ones (a logger cannot cross processes).
function rendererOptions(opts: WorkerRendererOptions): RenderOptions {
  const { logger: _logger, maxHeapBytes: _heap, ...rest } = opts;
  return rest;
}
