// The rollout controller of hub replicas: only the holder of the once-only work lease
// decides and writes rollout state; every replica delivers gated states and answers reads.
//
//   follower: a controller that never decides (stopped), its state read again from KV
//             every followIntervalMs; gates this replica's agents, answers list/get
//   leader:   a new controller, restored from KV (resumes where the last holder was),
//             writing through a store fenced by the lease's generation
//
// The controller itself is untouched: the wrapper only chooses which instance runs, at its
// entry points (restore, stop, setHead, gate, delivered, statusChanged, act, decide).
// A decision is saved before anyone acts on it, and a new holder starts from what was
// saved, so no cluster is updated twice for one step. A write after the lease is lost
// (or taken by a later generation) is refused by the store, so nothing of that decision
// happens; the leader's controller is stopped on losing it.
import type { BundleDesiredState, DesiredState, Logger } from '@flotilla/common';
import { UnavailableError, desiredStateDigest, durations, errorMessage } from '@flotilla/common';
import type { RolloutPlan } from '../render/types.js';
import type { RolloutController } from '../rollout/controller.js';
import type { Gated } from '../rollout/gate.js';
import type { RolloutAction } from '../rollout/machine.js';
import type { RolloutStore } from '../rollout/store.js';
import type { RolloutSummary, RolloutView } from '../rollout/view.js';
import type { Lease } from './lease.js';

/** Delivered states replayed to a new controller (it keeps as many, SENT_KEPT). */
const DELIVERED_KEPT = 4;

/** Options of LeaderRollouts. */
export interface LeaderRolloutsOptions {
  lease: Pick<Lease, 'generation' | 'onChange'>;
  /** The shared store (KvRolloutStore). */
  store: RolloutStore;
  /** Makes a controller over a store (the hub's options otherwise). */
  controller: (store: RolloutStore) => RolloutController;
  logger: Logger;
  /** Called when a follower's view changed: deliver gated states again. */
  onChange: () => void;
  /** How often a follower reads rollout state again (default durations.rolloutFollowInterval, 1 s). */
  followIntervalMs?: number;
  /** Sends an action to the lease holder (RolloutActionForwarding); none: a follower refuses actions. */
  forward?: (
    bundle: string,
    action: RolloutAction,
    by: string,
    revision?: string,
  ) => Promise<RolloutView>;
}

/** Runs the rollout controller on the lease holder only; see the file's comment. */
export class LeaderRollouts {
  private current: RolloutController;
  /** The follower's view a new leader replaces, answering until the leader has read the state. */
  private previous: RolloutController | undefined;
  private leading = false;
  private stopped = false;
  private switching: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private head: ReadonlyMap<string, DesiredState> | undefined;
  private readonly plans = new Map<string, RolloutPlan>();
  private readonly sent: ReadonlyMap<string, DesiredState>[] = [];
  /** Renderings read by followers, by digest (content-addressed: never change). */
  private readonly renderings = new Map<string, BundleDesiredState>();
  private readonly unsubscribe: () => void;
  /** Bundles with saved rollout state in the follower's view. */
  private known = new Set<string>();

  constructor(private readonly opts: LeaderRolloutsOptions) {
    this.current = opts.controller(this.readOnly());
    this.unsubscribe = opts.lease.onChange((leading, generation) => {
      this.switchTo(leading ? generation : undefined);
    });
  }

  /** True while this replica's controller decides (it holds the lease). */
  get deciding(): boolean {
    return this.leading;
  }

  /** Reads rollout state: as the leader when holding the lease, else as a follower. */
  async restore(): Promise<void> {
    this.switchTo(this.opts.lease.generation);
    await this.switching;
  }

  /** Stops deciding and following; decisions in progress finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    clearTimeout(this.timer);
    await this.switching;
    await this.current.stop();
  }

  setHead(
    states: ReadonlyMap<string, DesiredState>,
    plans: ReadonlyMap<string, RolloutPlan>,
  ): void {
    this.head = states;
    for (const [b, p] of plans) this.plans.set(b, p);
    this.current.setHead(states, plans);
    this.previous?.setHead(states, plans);
  }

  gate(states: ReadonlyMap<string, DesiredState>): Gated {
    return this.view().gate(this.leading ? states : this.unknownHeld(states));
  }

  // A follower gates a bundle with a strategy that has no saved state in its view (new,
  // or saved by the holder since the follower last read) at what it last sent, as the
  // holder does until its decision is saved; a controller's own view sends the head then.
  private unknownHeld(
    states: ReadonlyMap<string, DesiredState>,
  ): ReadonlyMap<string, DesiredState> {
    const unknown = new Set<string>();
    for (const [b, p] of this.plans) if (p.strategy && !this.known.has(b)) unknown.add(b);
    const last = this.sent[0];
    if (unknown.size === 0 || !last) return states;
    const out = new Map<string, DesiredState>();
    for (const [cluster, s] of states) {
      if (!s.bundles.some((b) => unknown.has(b.name))) {
        out.set(cluster, s);
        continue;
      }
      const sent = new Map((last.get(cluster)?.bundles ?? []).map((b) => [b.name, b]));
      const bundles: BundleDesiredState[] = [];
      const held = new Set(s.held ?? []);
      for (const b of s.bundles) {
        if (!unknown.has(b.name)) bundles.push(b);
        else if (sent.has(b.name)) bundles.push(sent.get(b.name) as BundleDesiredState);
        else held.add(b.name);
      }
      const h = [...held].sort();
      out.set(cluster, {
        ...s,
        bundles,
        ...(h.length > 0 ? { held: h } : {}),
        digest: desiredStateDigest(cluster, bundles, h),
      });
    }
    return out;
  }

  delivered(states: ReadonlyMap<string, DesiredState>): void {
    this.sent.unshift(states);
    this.sent.length = Math.min(this.sent.length, DELIVERED_KEPT);
    this.current.delivered(states);
    this.previous?.delivered(states);
  }

  watches(cluster: string): boolean {
    return this.view().watches(cluster);
  }

  statusChanged(cluster: string): void {
    this.current.statusChanged(cluster);
  }

  /** Acts as the holder, or has the holder act (forward) when another replica holds the lease. */
  act(bundle: string, action: RolloutAction, by: string, revision?: string): Promise<RolloutView> {
    if (!this.leading && this.opts.forward) return this.opts.forward(bundle, action, by, revision);
    return this.actAsHolder(bundle, action, by, revision);
  }

  /** Acts only while holding the lease (never forwards: what a forwarded action runs). */
  actAsHolder(
    bundle: string,
    action: RolloutAction,
    by: string,
    revision?: string,
  ): Promise<RolloutView> {
    if (!this.leading)
      return Promise.reject(
        new UnavailableError(
          'rollout actions on this hub replica (another replica holds the lease: retry, or send it there)',
        ),
      );
    return this.current.act(bundle, action, by, revision);
  }

  decide(): Promise<void> {
    return this.leading ? this.current.decide() : Promise.resolve();
  }

  list(): RolloutSummary[] {
    return this.view().list();
  }

  get(bundle: string): RolloutView | undefined {
    return this.view().get(bundle);
  }

  // A new leader answers once it has read the saved state; until then the view it replaces.
  private view(): RolloutController {
    if (this.previous && this.current.state === 'restoring') return this.previous;
    this.previous = undefined;
    return this.current;
  }

  // One switch at a time, in the order the lease told them.
  private switchTo(generation: number | undefined): void {
    this.switching = this.switching.then(async () => {
      if (this.stopped) return;
      clearTimeout(this.timer);
      const lead = generation !== undefined && this.opts.lease.generation === generation;
      if (lead && this.leading) return;
      await this.current.stop();
      if (this.stopped) return;
      if (!lead) {
        if (this.leading)
          this.opts.logger.info({}, 'rollout controller stopped: following the lease holder');
        this.leading = false;
        this.previous = undefined;
        await this.follow();
        return;
      }
      const c = this.prepared(this.opts.controller(this.fenced(generation)));
      this.previous = this.current.state === 'stopped' && !this.leading ? this.current : undefined;
      this.current = c;
      this.leading = true;
      this.opts.logger.info({ generation }, 'rollout controller resumes from saved state');
      await c.restore();
    });
  }

  // A follower's view: a controller that never decides, its state read from the store.
  private async follow(): Promise<void> {
    if (this.stopped || this.leading) return;
    const store = this.readOnly();
    const c = this.opts.controller(store);
    await c.stop(); // stopped first: restore() then only reads, and no decision is ever scheduled
    await c.restore();
    if (this.stopped || this.leading) return;
    if (store.failed) {
      this.opts.logger.warn(
        { err: store.failed },
        'reading rollout state failed: the last view is kept, will retry',
      );
    } else {
      this.current = this.prepared(c);
      this.known = store.bundles;
      this.opts.onChange();
    }
    this.timer = setTimeout(
      () => void (this.switching = this.switching.then(() => this.follow())),
      this.opts.followIntervalMs ?? durations.rolloutFollowInterval,
    );
    this.timer.unref();
  }

  // A new controller learns the head and what was delivered, as the previous one had.
  private prepared(c: RolloutController): RolloutController {
    if (this.head) c.setHead(this.head, this.plans);
    for (const s of [...this.sent].reverse()) c.delivered(s);
    return c;
  }

  // Writes only while this replica holds the lease of that generation.
  private fenced(generation: number): RolloutStore {
    const s = this.opts.store;
    const check = (): void => {
      if (this.opts.lease.generation !== generation)
        throw new UnavailableError(
          `rollout state writes (the lease of generation ${generation} is no longer held)`,
        );
    };
    return {
      loadStates: () => s.loadStates(),
      loadRenderings: (d) => s.loadRenderings(d),
      renderingDigests: () => s.renderingDigests(),
      saveState: async (b, encoded) => (check(), s.saveState(b, encoded)),
      deleteState: async (b) => (check(), s.deleteState(b)),
      saveRendering: async (r) => (check(), s.saveRendering(r)),
      deleteRendering: async (d) => (check(), s.deleteRendering(d)),
    };
  }

  // Reads only; renderings are cached by digest. `failed` tells a read that failed.
  private readOnly(): RolloutStore & { failed?: string; bundles: Set<string> } {
    const s = this.opts.store;
    const cache = this.renderings;
    const refuse = async (): Promise<never> => {
      throw new UnavailableError('rollout state writes (this replica does not hold the lease)');
    };
    const out: RolloutStore & { failed?: string; bundles: Set<string> } = {
      bundles: new Set(),
      loadStates: async () => {
        const states = await note(s.loadStates());
        for (const st of states) out.bundles.add(st.bundle);
        return states;
      },
      renderingDigests: () => note(s.renderingDigests()),
      loadRenderings: async (digests) => {
        const wanted = new Set(digests);
        const missing = digests.filter((d) => !cache.has(d));
        const found = await note(s.loadRenderings(missing));
        for (const [d, r] of found) cache.set(d, r);
        const result = new Map<string, BundleDesiredState>();
        for (const d of digests) {
          const r = cache.get(d);
          if (r) result.set(d, r);
        }
        // Only what is referred to now stays cached.
        for (const d of cache.keys()) if (!wanted.has(d)) cache.delete(d);
        return result;
      },
      saveState: refuse,
      deleteState: refuse,
      saveRendering: refuse,
      deleteRendering: refuse,
    };
    const note = async <T>(p: Promise<T>): Promise<T> => {
      try {
        return await p;
      } catch (err) {
        out.failed = errorMessage(err);
        throw err;
      }
    };
    return out;
  }
}
