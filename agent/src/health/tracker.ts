// Per-bundle health from the same watch events drift detection uses: each managed
// object's health (rules.ts), folded into the bundle's state, published as a
// health-changed event when the state changes or when a new revision (or desired-state
// digest) was applied since the bundle's last event, coalesced over a short window. The
// second rule is what lets the hub say "healthy at this commit": an unchanged state is
// still re-stated once for every applied revision.
import { LogFields, durations, objectKey } from '@flotilla/common';
import type { BundleHealthState, EventKind, HealthChangedData, Logger } from '@flotilla/common';
import type { WatchEvent } from '../kube/watch.js';
import { objectHealth } from './rules.js';
import type { ObjectHealth } from './rules.js';

/** Where health events go (EventPublisher satisfies it). */
export interface HealthReporter {
  publish<T>(kind: EventKind, data: T): { id: string };
}

/** Options of HealthTracker. */
export interface HealthTrackerOptions {
  logger: Logger;
  /** Coalescing window of changes per bundle (default durations.healthDebounce, 200 ms). */
  debounceMs?: number;
  /** Told each bundle's state after every coalesced change (dependsOn waits on it). */
  onState?: (bundle: string, state: BundleHealthState) => void;
}

/** What a bundle's last health event said. */
interface Published {
  state: BundleHealthState;
  revision: string;
  digest: string;
}

/** The state of a bundle from its objects' health and its apply failures. */
export function bundleState(
  health: Iterable<ObjectHealth>,
  applyFailures: number,
): { state: BundleHealthState; counts: HealthChangedData['counts'] } {
  const counts = { ready: 0, progressing: 0, degraded: 0, failed: applyFailures };
  for (const h of health) {
    if (h.state === 'Ready') counts.ready++;
    else if (h.state === 'Progressing') counts.progressing++;
    else counts.degraded++;
  }
  const state: BundleHealthState =
    counts.failed > 0
      ? 'Failed'
      : counts.degraded > 0
        ? 'Degraded'
        : counts.progressing > 0
          ? 'Progressing'
          : 'Ready';
  return { state, counts };
}

/** Tracks object health per bundle and reports bundle state changes. */
export class HealthTracker {
  /** bundle → key → health; every managed object has an entry ("not found" until seen). */
  private objects = new Map<string, Map<string, ObjectHealth>>();
  private bundleOf = new Map<string, string>();
  /**
   * Health of every object the watches reported, managed or not yet: an object an apply
   * creates is often reported before the apply ends and makes it managed.
   */
  private readonly seen = new Map<string, ObjectHealth>();
  /** The bundle digest each bundle's objects are from. */
  private digests = new Map<string, string>();
  private readonly failures = new Map<string, string[]>();
  /** What each bundle's last event said: its state and the content it was about. */
  private readonly published = new Map<string, Published>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private revision = '';
  private digest = '';

  constructor(
    private readonly reporter: HealthReporter,
    private readonly opts: HealthTrackerOptions,
  ) {}

  /**
   * Sets which objects (keys) make up each bundle, each bundle's apply failures, and the
   * revision and desired-state digest they come from.
   */
  setManaged(
    members: Map<string, string>,
    applyFailures: Map<string, string[]>,
    revision = '',
    digest = '',
    bundleDigests: Map<string, string> = new Map(),
  ): void {
    this.revision = revision;
    this.digest = digest;
    this.digests = new Map(bundleDigests);
    const before = this.objects;
    const next = new Map<string, Map<string, ObjectHealth>>();
    for (const [key, bundle] of members) {
      const kept = before.get(this.bundleOf.get(key) ?? '')?.get(key) ?? this.seen.get(key);
      if (!next.has(bundle)) next.set(bundle, new Map());
      next.get(bundle)?.set(key, kept ?? objectHealth(undefined));
    }
    this.bundleOf = new Map(members);
    this.objects = next;
    this.failures.clear();
    for (const [b, f] of applyFailures) if (f.length > 0) this.failures.set(b, f);
    for (const b of this.published.keys()) if (!next.has(b)) this.published.delete(b);
    for (const b of next.keys()) this.schedule(b);
  }

  /** A watch event for any object; ignored unless managed. */
  observe(ev: WatchEvent): void {
    const key = objectKey(ev.object);
    const health = objectHealth(ev.type === 'DELETED' ? undefined : ev.object);
    if (ev.type === 'DELETED') this.seen.delete(key);
    else this.seen.set(key, health);
    const bundle = this.bundleOf.get(key);
    if (!bundle) return;
    this.objects.get(bundle)?.set(key, health);
    this.schedule(bundle);
  }

  /**
   * Whether a bundle is Ready with its objects from `digest` (dependsOn): it must be
   * tracked at that digest, and every object Ready with no apply failure.
   */
  readyAt(bundle: string, digest: string): { ready: true } | { ready: false; reason: string } {
    if (
      !this.objects.has(bundle) &&
      this.digests.get(bundle) === digest &&
      !this.failures.has(bundle)
    )
      return { ready: true }; // applied at this digest with no objects to watch
    if (this.digests.get(bundle) !== digest)
      return { ready: false, reason: 'it is not applied at its current version yet' };
    const data = this.compute(bundle);
    if (data.state === 'Ready') return { ready: true };
    const why = data.reasons[0];
    return { ready: false, reason: `${data.state}${why ? ` (${why})` : ''}` };
  }

  /** The current (computed, maybe not yet published) state of each bundle. */
  states(): Map<string, BundleHealthState> {
    return new Map([...this.objects.keys()].map((b) => [b, this.compute(b).state]));
  }

  /** Cancels pending publications. */
  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private compute(bundle: string): HealthChangedData {
    const health = this.objects.get(bundle) ?? new Map<string, ObjectHealth>();
    const failures = this.failures.get(bundle) ?? [];
    const { state, counts } = bundleState(health.values(), failures.length);
    const reasons = [...failures];
    for (const [key, h] of health)
      if (h.state !== 'Ready') reasons.push(`${key}: ${h.message ?? h.state}`);
    return {
      bundle,
      revision: this.revision,
      state,
      previous: this.published.get(bundle)?.state ?? '',
      counts,
      reasons: reasons.slice(0, 10),
      ...(this.digest ? { digest: this.digest } : {}),
    };
  }

  private schedule(bundle: string): void {
    if (this.timers.has(bundle)) return;
    this.timers.set(
      bundle,
      setTimeout(() => {
        this.timers.delete(bundle);
        if (!this.objects.has(bundle)) return;
        const data = this.compute(bundle);
        this.opts.onState?.(bundle, data.state);
        const last = this.published.get(bundle);
        const sameContent = last?.revision === data.revision && last.digest === this.digest;
        if (data.state === data.previous && sameContent) return;
        this.published.set(bundle, {
          state: data.state,
          revision: data.revision,
          digest: this.digest,
        });
        this.opts.logger.info(
          {
            [LogFields.bundle]: bundle,
            [LogFields.revision]: data.revision,
            state: data.state,
            previous: data.previous,
          },
          data.state === data.previous
            ? 'bundle health at a new revision'
            : 'bundle health changed',
        );
        this.reporter.publish('health-changed', data);
      }, this.opts.debounceMs ?? durations.healthDebounce),
    );
  }
}
