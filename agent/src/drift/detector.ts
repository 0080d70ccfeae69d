// Drift detection and self-heal, triggered by watch events (no polling). A burst of
// events for one object is checked once, debounced. The check reuses the apply diff: a
// dry-run server-side apply of the object as we applied it, compared with the live
// object. Fields other managers own and server defaults are in both, so only fields WE
// manage can differ. Heals apply that one object, with per-object backoff.
import { createHash } from 'node:crypto';
import { LogFields, canonicalJson, durations, errorMessage, objectKey } from '@flotilla/common';
import type {
  DriftCorrectedData,
  DriftDetectedData,
  EventKind,
  KubeObject,
  Logger,
} from '@flotilla/common';
import { comparable } from '../apply/diff.js';
import type { KubeApi } from '../kube/types.js';
import { refOf } from '../kube/types.js';
import type { WatchEvent } from '../kube/watch.js';
import { changedBy } from './attribution.js';
import { driftChanges, publishable, withoutIgnored } from './changes.js';
import { DRIFT_DEFAULTS, HealPolicy } from './heal-policy.js';
import type { ManagedObject } from './managed.js';

/** Where drift events go (EventPublisher satisfies it). */
export interface DriftReporter {
  publish<T>(kind: EventKind, data: T): { id: string };
}

/** Options of DriftDetector. */
export interface DriftDetectorOptions {
  logger: Logger;
  /** Debounce of a burst of events per object (default durations.driftDebounce, 20 ms). */
  debounceMs?: number;
  /** Checks in flight at once (default 8). */
  concurrency?: number;
  policy?: HealPolicy;
  /** Called after each corrective apply (benchmarks, metrics). */
  onHealed?: (key: string, data: DriftCorrectedData) => void;
}

interface Pending {
  event: WatchEvent;
  firstSeen: number;
}

function fingerprint(obj: KubeObject): string {
  return createHash('sha1')
    .update(canonicalJson(comparable(obj)))
    .digest('base64');
}

/** Detects and heals drift of the managed objects. */
export class DriftDetector {
  private managed = new Map<string, ManagedObject>();
  private revision = '';
  private readonly pending = new Map<string, Pending>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly busy = new Set<string>();
  /** Fingerprint of the last live object found in order: an identical event needs no dry-run. */
  private readonly clean = new Map<string, string>();
  private readonly waiting: string[] = [];
  private running = 0;
  private paused = false;
  private stopped = false;
  private readonly policy: HealPolicy;
  /** Counters for metrics and tests. */
  readonly counts = { checks: 0, dryRuns: 0, detected: 0, healed: 0, healFailed: 0 };

  constructor(
    private readonly kube: Pick<KubeApi, 'apply'>,
    private readonly reporter: DriftReporter,
    private readonly opts: DriftDetectorOptions,
  ) {
    this.policy = opts.policy ?? new HealPolicy();
  }

  /** Events waiting, checks scheduled or running: 0 when the detector is idle. */
  get backlog(): number {
    return this.pending.size + this.timers.size + this.running + this.waiting.length;
  }

  /** Replaces the enforced objects (after an apply); forgets what is no longer managed. */
  setManaged(objects: Map<string, ManagedObject>, revision = ''): void {
    this.revision = revision;
    for (const key of this.clean.keys()) {
      const before = this.managed.get(key);
      const now = objects.get(key);
      // A changed desired object invalidates what we knew about its live state.
      if (!now || (before && canonicalJson(before.object) !== canonicalJson(now.object)))
        this.clean.delete(key);
      if (!now) this.policy.forget(key);
    }
    this.managed = objects;
  }

  /** While paused (an apply runs), events are only recorded: the apply itself makes the writes they report. */
  pause(): void {
    this.paused = true;
  }

  /** Checks everything recorded while paused. */
  resume(): void {
    this.paused = false;
    for (const key of this.pending.keys()) this.schedule(key, 0);
  }

  /** Stops all timers; in-flight checks finish on their own. */
  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** A watch event for any object; ignored unless it is managed. */
  onEvent(event: WatchEvent): void {
    if (this.stopped) return;
    const key = objectKey(event.object);
    if (!this.managed.has(key)) return;
    const prev = this.pending.get(key);
    this.pending.set(key, { event, firstSeen: prev?.firstSeen ?? Date.now() });
    if (!this.paused) this.schedule(key, this.opts.debounceMs ?? durations.driftDebounce);
  }

  private schedule(key: string, delayMs: number): void {
    if (this.timers.has(key) || this.busy.has(key) || this.stopped) return;
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.enqueue(key);
      }, delayMs),
    );
  }

  private enqueue(key: string): void {
    if (this.running >= (this.opts.concurrency ?? 8)) {
      if (!this.waiting.includes(key)) this.waiting.push(key);
      return;
    }
    this.running++;
    this.busy.add(key);
    void this.check(key)
      .catch((err: unknown) =>
        this.opts.logger.warn(
          { object: key, [LogFields.err]: errorMessage(err) },
          'drift check failed',
        ),
      )
      .finally(() => {
        this.running--;
        this.busy.delete(key);
        // Events that arrived during the check or heal are looked at now.
        if (this.pending.has(key) && !this.paused) this.schedule(key, 0);
        const next = this.waiting.shift();
        if (next !== undefined) this.enqueue(next);
      });
  }

  private async check(key: string): Promise<void> {
    const p = this.pending.get(key);
    const m = this.managed.get(key);
    this.pending.delete(key);
    if (!p || !m || this.paused || this.stopped) {
      if (p && this.paused) this.pending.set(key, p);
      return;
    }
    this.counts.checks++;
    const deleted = p.event.type === 'DELETED';
    const live = p.event.object;
    if (!deleted && this.clean.get(key) === fingerprint(live)) return;
    let changes: DriftDetectedData['changes'] = [];
    if (!deleted) {
      this.counts.dryRuns++;
      // force: the dry-run shows what our config gives even where another manager took a field.
      const dryRun = await this.kube.apply(m.object, { dryRun: true, force: true });
      // A dry-run carries the resourceVersion it was computed on: if the object moved on
      // since this event, a newer event is on its way and will be checked instead.
      if (dryRun.metadata.resourceVersion !== live.metadata.resourceVersion) return;
      changes = withoutIgnored(driftChanges(dryRun, live), m.ignore);
      if (changes.length === 0 || m.mode === 'warn') this.clean.set(key, fingerprint(live));
      if (changes.length === 0) return;
    }
    this.clean.delete(key);
    await this.drifted(key, m, p, deleted, changes, deleted ? undefined : live);
  }

  private async drifted(
    key: string,
    m: ManagedObject,
    p: Pending,
    deleted: boolean,
    changes: DriftDetectedData['changes'],
    live: KubeObject | undefined,
  ): Promise<void> {
    this.counts.detected++;
    const decision =
      m.mode === 'enforce' ? this.policy.next(key) : { heals: 0, fight: false, delayMs: 0 };
    const shown = publishable(m.object.kind, changes.slice(0, DRIFT_DEFAULTS.maxChanges));
    const data: DriftDetectedData = {
      bundle: m.bundle,
      revision: this.revision,
      object: refOf(m.object),
      deleted,
      changes: shown,
      manager: changedBy(
        live,
        changes.map((c) => c.path),
      ),
      mode: m.mode,
      heals: decision.heals,
      fight: decision.fight,
      ...(changes.length > shown.length ? { truncated: changes.length - shown.length } : {}),
      ...(m.mode === 'enforce' ? { healDelayMs: decision.delayMs } : {}),
    };
    const event = this.reporter.publish('drift-detected', data);
    const fields = {
      [LogFields.bundle]: m.bundle,
      object: key,
      manager: data.manager,
      paths: shown.map((c) => c.path),
      heals: decision.heals,
    };
    if (decision.fight)
      this.opts.logger.warn(
        { ...fields, delayMs: decision.delayMs },
        'object keeps drifting: something fights Flotilla over it; healing slows down',
      );
    else
      this.opts.logger.info(
        fields,
        m.mode === 'enforce' ? 'drift detected; healing' : 'drift detected (warn mode: not healed)',
      );
    if (m.mode !== 'enforce') return;
    if (decision.delayMs > 0) await new Promise((r) => setTimeout(r, decision.delayMs));
    // The desired object may have changed or gone while we waited.
    const current = this.managed.get(key);
    if (this.stopped || this.paused || !current) return;
    try {
      const result = await this.kube.apply(current.object, { force: current.force });
      this.clean.set(key, fingerprint(result));
      this.counts.healed++;
      const corrected: DriftCorrectedData = {
        bundle: current.bundle,
        revision: this.revision,
        object: refOf(current.object),
        driftEventId: event.id,
        latencyMs: Date.now() - p.firstSeen,
      };
      this.reporter.publish('drift-corrected', corrected);
      this.opts.onHealed?.(key, corrected);
    } catch (err) {
      this.counts.healFailed++;
      this.opts.logger.warn({ ...fields, [LogFields.err]: errorMessage(err) }, 'cannot heal drift');
    }
  }
}
