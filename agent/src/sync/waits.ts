// What ends a wait, so the agent reconciles again exactly then: a hook object finishing
// (polled by HookWaiter), or a dependency whose health moved (turned Ready, or changed
// the reason status shows). Armed from each reconcile's outcome; never a timer loop.
import { LogFields } from '@flotilla/common';
import type { DesiredState, Logger } from '@flotilla/common';
import { HookWaiter } from '../hooks/waiter.js';
import type { HookWake } from '../hooks/run.js';
import type { KubeApi } from '../kube/types.js';
import type { DependencyHealth } from './dependencies.js';
import type { ReconcileOutcome } from './reconcile.js';

/** Calls `wake` when something a reconcile waits for moved. */
export class WaitWakes {
  private readonly hooks: HookWaiter;
  /** Dependencies waited on, with the reason status was told. */
  private awaited = new Map<string, string>();

  constructor(
    kube: Pick<KubeApi, 'get'>,
    private readonly health: DependencyHealth,
    private readonly wake: () => void,
    private readonly logger: Logger,
  ) {
    this.hooks = new HookWaiter(kube, wake, { logger });
  }

  /** Arms what this reconcile's outcome waits for (replacing the previous ones). */
  arm(outcome: ReconcileOutcome | undefined): void {
    const hooks: HookWake[] = [];
    for (const w of outcome?.wakes ?? [])
      if (w.kind === 'object') hooks.push({ ref: w.ref, until: w.until, deadlineMs: w.deadlineMs });
    const onHealth = new Set(
      (outcome?.wakes ?? []).flatMap((w) => (w.kind === 'bundle' ? [w.bundle] : [])),
    );
    const awaited = new Map<string, string>();
    for (const b of outcome?.bundles ?? [])
      if (b.waiting && onHealth.has(b.waiting.for)) awaited.set(b.waiting.for, b.waiting.reason);
    this.awaited = awaited;
    this.hooks.set(hooks);
  }

  /** True when some bundle waits on this bundle's health. */
  awaits(bundle: string): boolean {
    return this.awaited.has(bundle);
  }

  /**
   * Wakes when a dependency waited on is now ready, or its reason changed since status was
   * told (its health settled after the apply, say): to go on, or to say why not.
   */
  check(state: DesiredState): void {
    for (const [name, said] of this.awaited) {
      const dep = state.bundles.find((b) => b.name === name);
      const now = dep && this.health(name, dep.digest);
      if (!now || (!now.ready && `waiting for bundle ${name}: ${now.reason}` === said)) continue;
      this.logger.info(
        { [LogFields.bundle]: name, ready: now.ready },
        'dependency health moved; reconciling',
      );
      this.awaited = new Map();
      return this.wake();
    }
  }

  /** Stops looking at hooks. */
  stop(): void {
    this.hooks.stop();
  }
}
