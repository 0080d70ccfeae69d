// Glue between an apply and what follows it: after every apply the set of enforced
// objects is rebuilt, a watch runs for every managed kind (filtered to objects with
// the bundle label), and each event goes to drift detection and to health tracking.
// While an apply runs, drift checks wait: the apply's own writes are not drift.
import { BUNDLE_LABEL, LogFields, errorMessage, sleep } from '@flotilla/common';
import type { BundleApplyResult, BundleHealthState, DesiredState, Logger } from '@flotilla/common';
import type { KubeApi } from '../kube/types.js';
import { KindWatcher } from '../kube/watch.js';
import type { WatchEvent, WatchSource } from '../kube/watch.js';
import { HealthTracker } from '../health/tracker.js';
import { DriftDetector } from './detector.js';
import type { DriftDetectorOptions, DriftReporter } from './detector.js';
import { kindId, managedSet } from './managed.js';
import type { ManagedObject } from './managed.js';
import type { ManagedNamespaces } from '../apply/scope.js';

/** How long an apply waits for new watches to list their objects (5 s). */
export const WATCH_SYNC_WAIT_MS = 5_000;

/** Options of DriftController. */
export interface DriftControllerOptions extends Omit<DriftDetectorOptions, 'logger'> {
  logger: Logger;
  defaultNamespace?: string;
  /** Namespaced mode: watch only these namespaces, one watch per kind and namespace (default: cluster-wide watches). */
  namespaces?: ManagedNamespaces;
  /** Health coalescing window (default durations.healthDebounce). */
  healthDebounceMs?: number;
  /** Told each bundle's health state after every coalesced change (see HealthTracker). */
  onHealth?: (bundle: string, state: BundleHealthState) => void;
}

/** Watches, detects drift, heals, and tracks health. */
export class DriftController {
  readonly detector: DriftDetector;
  readonly health: HealthTracker;
  private readonly watchers = new Map<string, KindWatcher>();
  private stopped = false;
  /** What was enforced after the last apply, and each bundle's digest then. */
  private enforced = new Map<string, ManagedObject>();
  private digests = new Map<string, string>();

  constructor(
    private readonly kube: Pick<KubeApi, 'apply' | 'resource'> & WatchSource,
    reporter: DriftReporter,
    private readonly opts: DriftControllerOptions,
  ) {
    this.detector = new DriftDetector(kube, reporter, opts);
    this.health = new HealthTracker(reporter, {
      logger: opts.logger,
      debounceMs: opts.healthDebounceMs,
      onState: opts.onHealth,
    });
  }

  /** An apply is about to start: hold drift checks. */
  beforeApply(): void {
    this.detector.pause();
  }

  /**
   * An apply ended: enforce this state from now on (a failure to resolve kinds leaves the
   * previous set). Bundles in `notApplied` (waiting, or stopped by a hook) keep what was
   * enforced for them before: their objects in the cluster are still the earlier ones.
   */
  async afterApply(
    state: DesiredState,
    bundles: readonly BundleApplyResult[],
    signal?: AbortSignal,
    notApplied: ReadonlySet<string> = new Set(),
  ): Promise<void> {
    try {
      if (this.stopped || signal?.aborted) return;
      const set = await managedSet(
        this.kube,
        state,
        this.opts.defaultNamespace,
        signal,
        this.opts.namespaces,
      );
      for (const [k, m] of set.objects) if (notApplied.has(m.bundle)) set.objects.delete(k);
      for (const [k, m] of this.enforced) {
        if (!notApplied.has(m.bundle)) continue;
        set.objects.set(k, m);
        set.kinds.add(kindId(m.object, this.opts.namespaces));
      }
      const digests = new Map<string, string>();
      for (const b of state.bundles) {
        const d = notApplied.has(b.name) ? this.digests.get(b.name) : b.digest;
        if (d !== undefined) digests.set(b.name, d);
      }
      this.enforced = set.objects;
      this.digests = digests;
      this.detector.setManaged(set.objects, state.revision);
      const members = new Map([...set.objects].map(([k, m]) => [k, m.bundle]));
      this.health.setManaged(
        members,
        new Map(bundles.map((b) => [b.name, b.failures.slice(0, Math.max(b.failed, 0))])),
        state.revision,
        state.digest,
        digests,
      );
      this.watchKinds(set.kinds);
      // A kind that cannot be listed must not hold the apply queue: its watcher keeps retrying.
      const waited = new AbortController();
      await Promise.race([
        Promise.all([...this.watchers.values()].map((w) => w.synced)),
        sleep(WATCH_SYNC_WAIT_MS, waited.signal),
      ]);
      waited.abort();
    } catch (err) {
      this.opts.logger.warn(
        { [LogFields.err]: errorMessage(err) },
        'cannot update the watched objects; keeping the previous set',
      );
    } finally {
      this.detector.resume();
    }
  }

  /** An apply that was about to start did not run (its state was held): resume drift checks on what is enforced. */
  cancelApply(): void {
    this.detector.resume();
  }

  /** Stops every watch and timer. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.detector.stop();
    this.health.stop();
    await Promise.all([...this.watchers.values()].map((w) => w.stop()));
    this.watchers.clear();
  }

  private watchKinds(kinds: Set<string>): void {
    for (const [id, w] of this.watchers) {
      if (kinds.has(id)) continue;
      void w.stop();
      this.watchers.delete(id);
    }
    for (const id of kinds) {
      if (this.watchers.has(id)) continue;
      const [apiVersion, kind, namespace] = id.split('|') as [string, string, string?];
      const w = new KindWatcher(this.kube, {
        apiVersion,
        kind,
        ...(namespace ? { namespace } : {}),
        labelSelector: BUNDLE_LABEL,
        logger: this.opts.logger,
        onEvent: (ev: WatchEvent) => {
          this.detector.onEvent(ev);
          this.health.observe(ev);
        },
      });
      this.watchers.set(id, w);
      w.start();
    }
  }
}
