// Looks at the hook objects a reconcile left waiting (a Job or Pod running, a previous one
// being deleted) every durations.hookPoll, and asks for a new reconcile as soon as one
// finished, vanished or reached its deadline. A GET per waiting hook: cheaper than
// re-running the whole reconcile, and no watch to keep for kinds nobody else watches.
import { LogFields, durations, errorMessage } from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import type { KubeApi } from '../kube/types.js';
import { describeRef } from '../kube/types.js';
import { hookOutcome } from './outcome.js';
import type { HookWake } from './run.js';

/** Options of HookWaiter. */
export interface HookWaiterOptions {
  logger: Logger;
  /** Interval between looks (default durations.hookPoll, 1 s). */
  pollMs?: number;
  now?: () => number;
}

/** Watches waiting hooks and calls `wake` once one of them can move on. */
export class HookWaiter {
  private waits: HookWake[] = [];
  private timer: NodeJS.Timeout | undefined;
  private looking = false;
  private stopped = false;

  constructor(
    private readonly kube: Pick<KubeApi, 'get'>,
    private readonly wake: () => void,
    private readonly opts: HookWaiterOptions,
  ) {}

  /** Replaces what is waited for (the latest reconcile's wakes); [] stops looking. */
  set(waits: readonly HookWake[]): void {
    this.waits = [...waits];
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waits.length > 0 && !this.stopped) this.arm();
  }

  /** Hooks being waited for. */
  get waiting(): number {
    return this.waits.length;
  }

  /** Stops looking. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private arm(): void {
    this.timer = setTimeout(() => void this.look(), this.opts.pollMs ?? durations.hookPoll);
    this.timer.unref?.();
  }

  private async look(): Promise<void> {
    if (this.looking || this.stopped) return;
    this.looking = true;
    const waits = this.waits;
    let moved: string | undefined;
    try {
      const now = (this.opts.now ?? Date.now)();
      for (const w of waits) {
        if (now >= w.deadlineMs) moved = `${describeRef(w.ref)}: deadline reached`;
        else {
          const live = await this.kube.get(w.ref);
          if (w.until === 'gone' ? !live : !live || hookOutcome(live).state !== 'running')
            moved = `${describeRef(w.ref)}: ${w.until === 'gone' ? 'gone' : 'finished'}`;
        }
        if (moved) break;
      }
    } catch (err) {
      this.opts.logger.debug({ [LogFields.err]: errorMessage(err) }, 'cannot look at a hook');
    } finally {
      this.looking = false;
    }
    // A newer reconcile replaced the waits meanwhile: it armed its own look.
    if (waits !== this.waits || this.stopped) return;
    if (moved) {
      this.waits = [];
      this.opts.logger.info({ hook: moved }, 'hook moved on; reconciling');
      this.wake();
    } else this.arm();
  }
}
