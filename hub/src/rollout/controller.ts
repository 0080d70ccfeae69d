// The rollout controller: sits between render and the desired-state store. It keeps, per
// bundle with a strategy, which rendering each cluster is sent (bundle-state.ts), decides
// on every render, status change, deadline and action (reconcile.ts → machine.ts), and
// saves each decision in JetStream KV before anyone acts on it: a cluster is sent a new
// rendering only once the state saying so is durable, so a hub killed at any point
// resumes where it was, never updating a cluster twice for one step nor skipping one.
// Decisions run one at a time, in order; the hub delivers gated states (gate.ts) after
// each committed decision.
import { performance } from 'node:perf_hooks';
import type { BundleDesiredState, DesiredState, Logger } from '@flotilla/common';
import {
  Backoff,
  LogFields,
  NotFoundError,
  UnavailableError,
  durations,
  errorMessage,
} from '@flotilla/common';
import type { RolloutPlan } from '../render/types.js';
import { HISTORY_OUTBOX_MAX, referencedDigests } from './bundle-state.js';
import type { BundleState, HistoryRecord } from './bundle-state.js';
import { Gate } from './gate.js';
import type { GateChanges, Gated } from './gate.js';
import { RolloutConflictError } from './machine.js';
import { forgetIndex, recountRun } from './transitions.js';
import type { RolloutAction } from './machine.js';
import type { ClusterObservation } from './model.js';
import { Journal } from './journal.js';
import { advanceBundle } from './reconcile.js';
import { nextWakeMs } from './tick.js';
import type { Advance, BundleHead } from './reconcile.js';
import { encodeState } from './store.js';
import type { RolloutStore } from './store.js';
import type { RolloutHistoryWriter } from './history.js';
import { rolloutSummary, rolloutView } from './view.js';
import type { RolloutSummary, RolloutView } from './view.js';

/** A bundle's health on a cluster as fleet status knows it (FleetStatus.bundleHealth). */
export interface BundleHealthFact {
  /** The cluster is offline or has never connected. */
  offline: boolean;
  /** Ready, Progressing, Degraded, Failed, or "" when never reported. */
  health: string;
  /** Desired-state digest the health is about ("" when unknown). */
  healthDigest: string;
  healthReason: string;
}

/** What the controller reads from fleet status. */
export interface RolloutStatusSource {
  bundleHealth(cluster: string, bundle: string): BundleHealthFact | undefined;
}

/** Options of RolloutController. */
export interface RolloutControllerOptions {
  store: RolloutStore;
  status: RolloutStatusSource;
  logger: Logger;
  /** Called after every committed decision: deliver gated states again. */
  onChange: () => void;
  /** Called with the transitions of every committed decision (history, alerts, metrics). */
  onTransitions?: (records: readonly HistoryRecord[]) => void;
  /** The durable history of transitions; they stay in their bundle's outbox until written. */
  history?: RolloutHistoryWriter;
  /**
   * Told how long each decision over every bundle took, saving aside: wall time and this
   * process's CPU time (ms), for metrics and the benchmark.
   */
  onDecision?: (ms: number, bundles: number, cpuMs: number) => void;
  /**
   * The CPU clock onDecision's cpuMs is read from, in ms (default: this process's CPU
   * time, every thread); the benchmark passes the main thread's.
   */
  cpuClock?: () => number;
  now?: () => number;
  /** Debounce of status changes (default durations.rolloutDebounce). */
  debounceMs?: number;
  /**
   * A decision takes no further bundle once it has run this long (default
   * durations.rolloutDecisionBudget); the others keep their news for the next one.
   */
  decisionBudgetMs?: number;
  /**
   * Clusters one bundle's decision admits or puts back at most (default
   * DECISION_SLICE_CLUSTERS); the rest follow in the next decisions, at once.
   */
  sliceClusters?: number;
}

/** News a bundle was not decided on yet (its decision was left for the next tick). */
interface Deferred {
  /** The head it has not seen yet (a newer one replaces it). */
  head: BundleHead | undefined;
  /** Clusters whose status changed meanwhile; undefined: every cluster (a full pass). */
  scope: ReadonlySet<string> | undefined;
}

/** Lifecycle of the controller. */
export type ControllerState = 'restoring' | 'running' | 'stopped';

/**
 * While bundles wait for the next decision, committed ones are delivered at most this long
 * after their commit (100 ms): gating the fleet once per decision of a split commit
 * would cost more than the decisions.
 */
const DELIVER_MAX_DELAY_MS = 100;

/**
 * Clusters one bundle's decision admits or puts back at most (100): a stage start or a
 * rollback of a thousand clusters is decided in slices, each a decision of its own.
 */
export const DECISION_SLICE_CLUSTERS = 100;

// Observations that carry nothing of their own, shared (decisions read them, never change them).
const HEALTHY: ClusterObservation = Object.freeze({ healthy: true, unhealthy: false, reason: '' });
const OFFLINE: ClusterObservation = Object.freeze({
  healthy: false,
  unhealthy: true,
  reason: 'cluster is offline',
});
const NOT_YET: ClusterObservation = Object.freeze({
  healthy: false,
  unhealthy: false,
  reason: 'no health reported at the new revision yet',
});

/** Sent states remembered per cluster, to tell which bundle rendering a health report is about (4). */
const SENT_KEPT = 4;

/** The rollout controller of a hub. */
export class RolloutController {
  private stateValue: ControllerState = 'restoring';
  private committed = new Map<string, BundleState>();
  private readonly renderings = new Map<string, BundleDesiredState>();
  private readonly gater = new Gate();
  private readonly stored = new Set<string>();
  private head = new Map<string, DesiredState>();
  private plans = new Map<string, RolloutPlan>();
  private headChanged = false;
  /** Per cluster, the last few states sent: digest → the bundles' digests in it. */
  private readonly sent = new Map<
    string,
    { digest: string; bundles: Map<string, BundleDesiredState> }[]
  >();
  private settled = false;
  private queue: Promise<unknown> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private timerAt = 0;
  /** Clusters records of the live rollouts: their members' status changes lead to a decision. */
  private live: Record<string, unknown>[] = [];
  /** Committed rollouts with clusters left over by a sliced decision (Rollout.pending). */
  private pendingBundles = 0;
  /** Digests each bundle's slots refer to, recomputed when a decision had a new head. */
  private readonly usedBy = new Map<string, Set<string>>();
  /** What committed state changed since the last gating; undefined: everything (gate all). */
  private gateChanges: { clusters: Map<string, Set<string>>; bundles: Set<string> } | undefined;
  /** Watched clusters whose status changed since the last decision. */
  private dirty = new Set<string>();
  /** The next decision reads every cluster's status (after a restore, a render, an action). */
  private fullPass = true;
  /** Bundles a decision ran out of time for, in order, with their news: decided first next time. */
  private deferred = new Map<string, Deferred>();
  /** Committed decisions not delivered yet (bundles still waited for the next decision), since when. */
  private undeliveredSince: number | undefined;
  /** Outbox records written to the history stream, to drop from the outbox at the next save. */
  private readonly published = new Set<string>();
  private publishing = false;
  private readonly backoff = new Backoff({
    initialMs: durations.rolloutSaveRetryInitial,
    maxMs: durations.rolloutSaveRetryMax,
  });
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly opts: RolloutControllerOptions) {
    this.now = opts.now ?? Date.now;
    this.log = opts.logger;
  }

  /** Current lifecycle state. */
  get state(): ControllerState {
    return this.stateValue;
  }

  /**
   * Reads saved rollout state and the renderings it refers to. Until it succeeds, bundles
   * with a strategy are held (their clusters keep what they run); it retries by itself.
   */
  async restore(): Promise<void> {
    try {
      const states = await this.opts.store.loadStates();
      const digests = new Set<string>();
      for (const s of states) for (const d of referencedDigests(s)) digests.add(d);
      for (const d of await this.opts.store.renderingDigests()) this.stored.add(d);
      const found = await this.opts.store.loadRenderings([...digests]);
      for (const [d, r] of found) this.renderings.set(d, r);
      const lost = [...digests].filter((d) => !found.has(d));
      if (lost.length > 0)
        this.log.warn(
          { renderings: lost.length },
          'saved renderings are missing: clusters that should run them are held',
        );
      this.committed = new Map(states.map((s) => [s.bundle, s]));
      this.gateChanges = undefined;
      if (this.stateValue === 'stopped') return;
      // Which clusters' status changes matter, from the restored state: nothing may be
      // committed for a while, and their health reports must still move the rollout.
      this.usedBy.clear();
      this.afterCommit(new Map(states.map((s) => [s.bundle, referencedDigests(s)])));
      this.stateValue = 'running';
      this.backoff.reset();
      this.log.info({ bundles: states.length, renderings: found.size }, 'rollout state restored');
    } catch (err) {
      if (this.stateValue === 'stopped') return;
      const delay = this.backoff.next();
      this.log.warn(
        { err: errorMessage(err), retryInMs: delay },
        'reading rollout state failed: rollout bundles are held until it succeeds',
      );
      this.timer = setTimeout(() => void this.restore(), delay);
      this.timer.unref();
      return;
    }
    this.fullPass = true;
    this.schedule(0);
    this.opts.onChange();
    void this.flushHistory();
  }

  /** Stops timers; decisions in progress finish, nothing new starts. */
  async stop(): Promise<void> {
    this.stateValue = 'stopped';
    clearTimeout(this.timer);
    await this.queue;
  }

  /** The newest render's states and plans (merged over sources); a decision follows. */
  setHead(
    states: ReadonlyMap<string, DesiredState>,
    plans: ReadonlyMap<string, RolloutPlan>,
  ): void {
    this.head = new Map(states);
    for (const [b, p] of plans) this.plans.set(b, p);
    this.gateChanges = undefined;
    this.headChanged = true;
    this.schedule(0);
  }

  /** The states to deliver now: the head, gated by committed rollout state. */
  gate(states: ReadonlyMap<string, DesiredState>): Gated {
    const strategyBundles = new Set<string>();
    for (const [b, p] of this.plans) if (p.strategy) strategyBundles.add(b);
    for (const b of this.committed.keys()) if (!this.plans.has(b)) strategyBundles.add(b);
    const gated = this.gater.run(states, {
      bundles: this.committed,
      strategyBundles,
      restored: this.stateValue !== 'restoring',
      baselineFromHead: !this.settled,
      rendering: (d) => this.renderings.get(d),
      lastSent: (c, b) => this.sent.get(c)?.[0]?.bundles.get(b),
      changed: this.gateChanges as GateChanges | undefined,
    });
    this.gateChanges = { clusters: new Map(), bundles: new Set() };
    if (gated.missing.length > 0)
      this.log.error(
        { renderings: gated.missing.length },
        'renderings a rollout needs are missing: their bundles are held on those clusters',
      );
    return gated;
  }

  /** Records what was delivered, to tell which rendering later health reports are about. */
  delivered(states: ReadonlyMap<string, DesiredState>): void {
    for (const [cluster, s] of states) {
      const list = this.sent.get(cluster) ?? [];
      if (list[0]?.digest === s.digest) continue;
      list.unshift({ digest: s.digest, bundles: new Map(s.bundles.map((b) => [b.name, b])) });
      list.length = Math.min(list.length, SENT_KEPT);
      this.sent.set(cluster, list);
    }
    for (const cluster of this.sent.keys()) if (!states.has(cluster)) this.sent.delete(cluster);
  }

  /**
   * Bundles whose news waits for the next decision (the last one ran out of its budget),
   * and bundles with clusters left over by a sliced decision.
   */
  get deferredBundles(): number {
    return this.deferred.size + this.pendingBundles;
  }

  /** True when status changes of the cluster lead to a decision (it is in a live rollout). */
  watches(cluster: string): boolean {
    for (const clusters of this.live) if (Object.hasOwn(clusters, cluster)) return true;
    return false;
  }

  /** Fleet status changed for a cluster: decide again soon when a rollout watches it. */
  statusChanged(cluster: string): void {
    if (!this.watches(cluster)) return;
    this.dirty.add(cluster);
    this.schedule(this.opts.debounceMs ?? durations.rolloutDebounce);
  }

  /**
   * Applies a person's action to a bundle's rollout (of `revision`, a prefix, when given);
   * resolves with the rollout after it, once saved.
   */
  act(bundle: string, action: RolloutAction, by: string, revision?: string): Promise<RolloutView> {
    return this.enqueue(async () => {
      if (this.stateValue === 'restoring')
        throw new UnavailableError('rollout state (not read from NATS yet)');
      // News of the bundle left for the next decision comes first, as it came first.
      for (let n = 0; this.deferred.has(bundle) && n < 1_000; n++) await this.run();
      const prev = this.committed.get(bundle);
      if (!prev?.rollout) throw new NotFoundError('rollout of bundle', bundle);
      if (revision && !prev.rollout.revision.startsWith(revision))
        throw new RolloutConflictError(
          `the rollout of ${bundle} is at ${prev.rollout.revision.slice(0, 12)}, not ${revision}: nothing done`,
        );
      const journal = new Journal(recountRun);
      let adv: Advance;
      try {
        adv = advanceBundle(
          prev,
          undefined,
          this.context(bundle, () => undefined, journal),
          {
            type: action,
            by,
          },
        );
      } catch (err) {
        this.undo(journal);
        throw err;
      }
      await this.commit(new Map([[bundle, adv]]), journal, new Set());
      this.log.info(
        { [LogFields.bundle]: bundle, action, by, phase: adv.state?.rollout?.phase },
        'rollout action',
      );
      return rolloutView(adv.state?.rollout ?? prev.rollout, this.now());
    });
  }

  /** Decides now, after whatever is queued; resolves once the decision is committed (or failed). */
  decide(): Promise<void> {
    return this.enqueue(() => this.run());
  }

  /** Every bundle's latest rollout, by bundle. */
  list(): RolloutSummary[] {
    return [...this.committed.values()]
      .filter((s) => s.rollout !== undefined)
      .sort((a, b) => (a.bundle < b.bundle ? -1 : 1))
      .map((s) => rolloutSummary(s.rollout as NonNullable<BundleState['rollout']>));
  }

  /** A bundle's latest rollout, or undefined. */
  get(bundle: string): RolloutView | undefined {
    const r = this.committed.get(bundle)?.rollout;
    return r ? rolloutView(r, this.now()) : undefined;
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.queue.then(fn);
    this.queue = p.catch(() => undefined);
    return p;
  }

  private schedule(delayMs: number): void {
    if (this.stateValue === 'stopped') return;
    const at = this.now() + delayMs;
    if (this.timer && this.timerAt <= at) return;
    clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.enqueue(() => this.run());
    }, delayMs);
    this.timer.unref();
  }

  // One decision over every bundle with a strategy (or saved state), those left over from
  // the last one first. Once it has run for its budget, the bundles not decided yet keep
  // their news for the next decision, which follows at once: bundles are independent,
  // so a commit that starts thousands of cluster updates is decided over a few short
  // ticks instead of one long one, each bundle exactly as it would have been.
  private async run(): Promise<void> {
    if (this.stateValue !== 'running') return;
    const withHead = this.headChanged;
    this.headChanged = false;
    const full = this.fullPass || withHead;
    const dirty = this.dirty;
    this.dirty = new Set();
    this.fullPass = false;
    const heads = withHead ? this.bundleHeads() : new Map<string, BundleHead>();
    const t0 = performance.now();
    const cpuClock = this.opts.cpuClock ?? processCpuMs;
    const cpu0 = cpuClock();
    const budget = this.opts.decisionBudgetMs ?? durations.rolloutDecisionBudget;
    const leftOver = this.deferred;
    this.deferred = new Map();
    const names = new Set([...leftOver.keys(), ...this.committed.keys(), ...heads.keys()]);
    const out = new Map<string, Advance>();
    // Decisions change committed slots and runs in place; commit undoes that until saved.
    const journal = new Journal(recountRun);
    let wake: number | undefined;
    let decided = 0;
    let sawHead = false;
    const headed = new Set<string>();
    try {
      for (const bundle of names) {
        const prior = leftOver.get(bundle);
        const head = heads.get(bundle) ?? prior?.head;
        const scope = full ? undefined : prior ? union(prior.scope, dirty) : dirty;
        if (decided > 0 && performance.now() - t0 >= budget) {
          if (head || scope === undefined || scope.size > 0)
            this.deferred.set(bundle, { head, scope });
          else {
            // Without news only time can move it (deadlines, soak, windows): wake for that.
            const r = this.committed.get(bundle)?.rollout;
            const at = r ? nextWakeMs(r, this.now()) : undefined;
            if (at !== undefined && (wake === undefined || at < wake)) wake = at;
          }
          continue;
        }
        decided++;
        if (head) {
          sawHead = true;
          headed.add(bundle);
        }
        const adv = advanceBundle(
          this.committed.get(bundle),
          head,
          this.context(bundle, () => scope, journal),
        );
        if (adv.changed) out.set(bundle, adv);
        if (adv.wakeMs !== undefined && (wake === undefined || adv.wakeMs < wake))
          wake = adv.wakeMs;
      }
    } catch (err) {
      this.undo(journal);
      this.deferred = leftOver;
      throw err;
    }
    if (this.opts.onDecision) {
      this.opts.onDecision(performance.now() - t0, decided, cpuClock() - cpu0);
    }
    try {
      await this.commit(out, journal, headed);
      this.backoff.reset();
      if (sawHead && ![...this.deferred.values()].some((d) => d.head)) this.settled = true;
    } catch (err) {
      // Nothing of it happened: the next decision must see the same news again.
      if (withHead || sawHead) this.headChanged = true;
      if (full) this.fullPass = true;
      for (const c of dirty) this.dirty.add(c);
      for (const p of leftOver.values()) {
        if (p.scope === undefined) this.fullPass = true;
        else for (const c of p.scope) this.dirty.add(c);
      }
      const delay = this.backoff.next();
      this.log.warn(
        { err: errorMessage(err), retryInMs: delay },
        'saving rollout state failed: nothing moves until it is saved',
      );
      this.schedule(delay);
      return;
    }
    if (this.deferred.size > 0) this.schedule(0);
    if (wake !== undefined) this.schedule(Math.max(0, wake - this.now()));
  }

  // The head per bundle with a strategy: digest per cluster, and the clusters holding it.
  private bundleHeads(): Map<string, BundleHead> {
    const out = new Map<string, BundleHead>();
    const names = new Set([...this.committed.keys()]);
    for (const [b, p] of this.plans) if (p.strategy || this.committed.has(b)) names.add(b);
    let revision = '';
    const digests = new Map<string, Map<string, string>>();
    const held = new Map<string, Set<string>>();
    for (const b of names) {
      digests.set(b, new Map());
      held.set(b, new Set());
    }
    for (const [cluster, s] of this.head) {
      revision ||= s.revision;
      for (const b of s.bundles) digests.get(b.name)?.set(cluster, b.digest);
      for (const h of s.held ?? []) held.get(h)?.add(cluster);
    }
    for (const b of names)
      out.set(b, {
        bundle: b,
        revision,
        digests: digests.get(b) as Map<string, string>,
        held: held.get(b) as Set<string>,
        plan: this.plans.get(b),
      });
    return out;
  }

  private context(
    bundle: string,
    scope: () => ReadonlySet<string> | undefined,
    journal: Journal,
  ): Parameters<typeof advanceBundle>[2] {
    const plan = this.plans.get(bundle);
    const paused = new Set(plan?.paused ?? []);
    return {
      nowMs: this.now(),
      baseline: (c) =>
        this.settled
          ? this.sent.get(c)?.[0]?.bundles.get(bundle)?.digest
          : this.head.get(c)?.bundles.find((b) => b.name === bundle)?.digest,
      observe: (c, to) => this.observe(c, bundle, to),
      paused: (c) => paused.has(c),
      scope,
      slice: this.opts.sliceClusters ?? DECISION_SLICE_CLUSTERS,
      journal,
    };
  }

  // Healthy means Ready, reported about a state this hub sent in which the bundle was at
  // the rollout's new rendering: never a report about the previous one.
  private observe(cluster: string, bundle: string, to: string | undefined): ClusterObservation {
    const f = this.opts.status.bundleHealth(cluster, bundle);
    if (!f || f.offline) return OFFLINE;
    const at = this.sent
      .get(cluster)
      ?.find((s) => s.digest === f.healthDigest)
      ?.bundles.get(bundle)?.digest;
    const current = to !== undefined && at === to;
    if (current && f.health === 'Ready') return HEALTHY;
    if (current && f.health !== '')
      return {
        healthy: false,
        unhealthy: true,
        reason: `${f.health}${f.healthReason ? ` (${f.healthReason})` : ''}`,
      };
    return NOT_YET;
  }

  // Saves renderings first, then states; only then are they the committed state. The
  // decision changed committed slots and runs in place (the journal): what is saved is
  // encoded first, then those changes are undone, so that nobody (gating, the API) sees
  // them before they are durable, and redone once they are.
  // `headed`: the bundles decided with a new head (default: all), the only ones whose slots
  // can refer to digests they did not refer to before.
  private async commit(
    out: ReadonlyMap<string, Advance>,
    journal: Journal,
    headed?: ReadonlySet<string>,
  ): Promise<void> {
    if (out.size === 0) {
      this.undo(journal);
      this.deliver();
      return;
    }
    const store = this.opts.store;
    const needed = new Map<string, BundleDesiredState>();
    const encoded = new Map<string, string | undefined>();
    const refs = new Map<string, Set<string>>();
    const dropped: string[] = [];
    try {
      // Transitions wait in their bundle's outbox (saved with it) until the history has them.
      for (const [bundle, adv] of out) {
        if (!adv.state) continue;
        const kept: HistoryRecord[] = [];
        for (const r of this.committed.get(bundle)?.outbox ?? [])
          if (this.published.has(r.id)) dropped.push(r.id);
          else kept.push(r);
        adv.state.outbox =
          adv.transitions.length > 0 || kept.length !== adv.state.outbox.length
            ? [...kept, ...adv.transitions].slice(-HISTORY_OUTBOX_MAX)
            : kept;
      }
      let index: Map<string, BundleDesiredState> | undefined;
      for (const [bundle, adv] of out) {
        if (!adv.state) continue;
        let digests = headed?.has(bundle) === false ? this.usedBy.get(bundle) : undefined;
        if (!digests) refs.set(bundle, (digests = referencedDigests(adv.state)));
        // Every rendering a slot refers to (`to` too: saved before a cluster is sent it).
        for (const d of digests) {
          if (this.stored.has(d) || needed.has(d)) continue;
          const r = this.renderings.get(d) ?? (index ??= this.renderingIndex()).get(d);
          if (r) needed.set(d, r);
        }
      }
      for (const [bundle, adv] of out)
        encoded.set(bundle, adv.state ? encodeState(adv.state) : undefined);
    } finally {
      this.undo(journal);
    }
    await Promise.all([...needed.values()].map((r) => store.saveRendering(r)));
    for (const [d, r] of needed) {
      this.stored.add(d);
      this.renderings.set(d, r);
    }
    await Promise.all(
      [...encoded].map(([bundle, text]) =>
        text !== undefined ? store.saveState(bundle, text) : store.deleteState(bundle),
      ),
    );
    journal.redo();
    for (const c of journal.reshaped) forgetIndex(c);
    this.noteGateChanges(out, journal, headed);
    const records: HistoryRecord[] = [];
    for (const id of dropped) this.published.delete(id);
    for (const [bundle, adv] of out) {
      if (adv.state) this.committed.set(bundle, adv.state);
      else this.committed.delete(bundle);
      records.push(...adv.transitions);
    }
    this.afterCommit(refs);
    if (records.length > 0) this.opts.onTransitions?.(records);
    this.undeliveredSince ??= performance.now();
    this.deliver();
    if (records.length > 0) void this.flushHistory();
  }

  // What gating must look at again: the clusters whose slot or run a decision changed (the
  // journal's keys), and bundles changed as a whole (a head, a new or ended state, a new
  // rollout, its phase, stage or reason: every hold reason of the bundle may change).
  private noteGateChanges(
    out: ReadonlyMap<string, Advance>,
    journal: Journal,
    headed: ReadonlySet<string> | undefined,
  ): void {
    const g = this.gateChanges;
    if (!g) return;
    // Slots maps and clusters records are keyed by cluster name.
    const owner = new Map<object, string>();
    for (const [bundle, s] of this.committed) {
      owner.set(s.slots, bundle);
      if (s.rollout) owner.set(s.rollout.clusters, bundle);
    }
    for (const [bundle, adv] of out) {
      if (adv.state) owner.set(adv.state.slots, bundle);
      if (adv.state?.rollout) owner.set(adv.state.rollout.clusters, bundle);
    }
    journal.forEachChange((container, key) => {
      const bundle = owner.get(container);
      if (bundle === undefined) return;
      let set = g.clusters.get(bundle);
      if (!set) g.clusters.set(bundle, (set = new Set()));
      set.add(key as string);
    });
    for (const [bundle, adv] of out) {
      const before = this.committed.get(bundle)?.rollout;
      const after = adv.state?.rollout;
      if (
        headed?.has(bundle) !== false ||
        !adv.state ||
        before?.id !== after?.id ||
        before?.phase !== after?.phase ||
        before?.stage !== after?.stage ||
        before?.reason !== after?.reason ||
        before?.clusters !== after?.clusters
      )
        g.bundles.add(bundle);
    }
  }

  // Has committed decisions delivered, once no bundle waits for the next decision (or they
  // waited long enough): a commit split over several decisions is gated once.
  private deliver(): void {
    const since = this.undeliveredSince;
    if (since === undefined) return;
    const waiting = this.deferred.size + this.pendingBundles > 0;
    if (waiting && performance.now() - since < DELIVER_MAX_DELAY_MS) return;
    this.undeliveredSince = undefined;
    this.opts.onChange();
  }

  // Puts committed state back as it was before the decision (it was not saved).
  private undo(journal: Journal): void {
    journal.undo();
    for (const c of journal.reshaped) forgetIndex(c);
  }

  // Writes outbox records to the history stream, then saves the outboxes without them.
  // A failure leaves them in the outbox for the next attempt (after the next decision).
  private async flushHistory(): Promise<void> {
    const writer = this.opts.history;
    if (!writer || this.publishing) return;
    this.publishing = true;
    try {
      const pending = [...this.committed.values()].flatMap((s) =>
        s.outbox.filter((r) => !this.published.has(r.id)),
      );
      if (pending.length === 0) return;
      await writer.publish(pending);
      // Dropped from the outboxes at their bundle's next save, not saved again just for it:
      // a record re-sent after a restart is de-duplicated by its id.
      for (const r of pending) this.published.add(r.id);
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, 'writing rollout history failed: kept for later');
    } finally {
      this.publishing = false;
    }
  }

  // Every rendering at hand (head and recently sent states), by digest.
  private renderingIndex(): Map<string, BundleDesiredState> {
    const out = new Map<string, BundleDesiredState>();
    for (const list of this.sent.values())
      for (const s of list) for (const b of s.bundles.values()) out.set(b.digest, b);
    for (const s of this.head.values()) for (const b of s.bundles) out.set(b.digest, b);
    return out;
  }

  // Keeps in memory only the renderings committed state refers to; finds the rollouts
  // whose clusters' status changes are worth a decision. Only a new head (or a restore)
  // brings slots new digests: a decision without one only moves them among cur, stable
  // and to, so the digests of the other bundles are not looked at again (a rendering no
  // longer referred to stays until that bundle's next head).
  private afterCommit(refs: ReadonlyMap<string, Set<string>>): void {
    for (const [bundle, digests] of refs) this.usedBy.set(bundle, digests);
    for (const bundle of this.usedBy.keys())
      if (!this.committed.has(bundle)) this.usedBy.delete(bundle);
    const used = new Set<string>();
    for (const digests of this.usedBy.values()) for (const d of digests) used.add(d);
    for (const d of this.renderings.keys()) if (!used.has(d)) this.renderings.delete(d);
    const live: Record<string, unknown>[] = [];
    let pending = 0;
    for (const s of this.committed.values()) {
      const r = s.rollout;
      if (!r) continue;
      if (r.pending !== undefined) pending++;
      if (r.phase !== 'Superseded' && r.phase !== 'RolledBack' && r.phase !== 'Aborted')
        live.push(r.clusters);
    }
    this.live = live;
    this.pendingBundles = pending;
  }
}

// The clusters of both scopes; undefined (every cluster) when either is.
function union(
  a: ReadonlySet<string> | undefined,
  b: ReadonlySet<string>,
): ReadonlySet<string> | undefined {
  if (a === undefined) return undefined;
  if (a.size === 0) return b;
  if (b.size === 0) return a;
  return new Set([...a, ...b]);
}

function processCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}
