// Applies are serialized: one at a time, and while one runs only the newest waiting job
// is kept (a desired state superseded before it started is never applied). Which
// waiting job a new one may replace is the caller's rule (a periodic resync must not
// replace a desired state from the hub).
import { LogFields, errorMessage } from '@flotilla/common';
import type { Logger } from '@flotilla/common';

/** Runs one job at a time with latest-wins for waiting jobs. */
export class LatestWinsQueue<J> {
  private pending: J | undefined;
  private running: Promise<void> | undefined;
  private controller: AbortController | undefined;
  private closed = false;

  constructor(
    private readonly run: (job: J, signal: AbortSignal) => Promise<void>,
    private readonly logger: Logger,
    /** May `next` replace the waiting `pending` job? (default: always) */
    private readonly mayReplace: (pending: J, next: J) => boolean = () => true,
  ) {}

  /** Queues a job; returns false when it was not queued (closed, or a waiting job has priority). */
  submit(job: J): boolean {
    if (this.closed) return false;
    if (this.pending !== undefined && !this.mayReplace(this.pending, job)) return false;
    this.pending = job;
    this.running ??= this.drain().finally(() => (this.running = undefined));
    return true;
  }

  /** True while a job runs or waits. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Resolves when no job runs or waits. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Stops accepting jobs and drops the waiting one; waits up to `finishMs` for the running job, then aborts it. */
  async close(finishMs: number): Promise<void> {
    this.closed = true;
    this.pending = undefined;
    const running = this.running;
    if (!running) return;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), finishMs)));
    if (await Promise.race([running.then(() => false), timedOut])) this.controller?.abort();
    clearTimeout(timer);
    await running;
  }

  private async drain(): Promise<void> {
    for (let job = this.take(); job !== undefined; job = this.take()) {
      this.controller = new AbortController();
      try {
        await this.run(job, this.controller.signal);
      } catch (err) {
        this.logger.error({ [LogFields.err]: errorMessage(err) }, 'apply job failed unexpectedly');
      }
    }
  }

  private take(): J | undefined {
    const job = this.pending;
    this.pending = undefined;
    return job;
  }
}
