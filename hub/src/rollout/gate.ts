// Between render and the desired-state store: each cluster's desired state gets, for every
// bundle with a rollout strategy, the rendering its rollout admits there (`cur`) instead
// of the head's, and the digest is computed again. A cluster a bundle has not reached gets
// nothing of it, with the bundle in `held` so the agent leaves whatever it has alone. Each
// such difference from the head is a hold, which status shows (the cluster is Waiting).
// A cluster whose head and choices did not change keeps the state gated last time: most
// clusters, most of the time, so gating costs what changed.
import { desiredStateDigest } from '@flotilla/common';
import type { BundleDesiredState, DesiredState } from '@flotilla/common';
import type { BundleState } from './bundle-state.js';
import { holdReason } from './view.js';

/** A bundle a rollout keeps from its head rendering on one cluster. */
export interface RolloutHold {
  bundle: string;
  /** The rollout ("" while rollout state is not restored yet). */
  rollout: string;
  /** Why, for status ("held by rollout web@1a2b3c4d5e6f-2: waits for stage 2/3 (prod)"). */
  reason: string;
  /** Commit of the rendering the cluster gets instead; "" when it gets none. */
  servingRevision: string;
  /** Commit of the head rendering it does not get yet. */
  targetRevision: string;
}

/** What gating reads. */
export interface GateInputs {
  /** Committed (saved) states of bundles with a strategy. */
  bundles: ReadonlyMap<string, BundleState>;
  /** Bundles with a strategy at the head, including those without a saved state yet. */
  strategyBundles: ReadonlySet<string>;
  /** False until saved rollout state was read at start: rollout bundles are held meanwhile. */
  restored: boolean;
  /** True until the first gated delivery: a bundle without saved state then starts at its head. */
  baselineFromHead: boolean;
  /** A saved rendering by digest. */
  rendering(digest: string): BundleDesiredState | undefined;
  /** What the cluster was last sent of the bundle. */
  lastSent(cluster: string, bundle: string): BundleDesiredState | undefined;
  /**
   * What changed since the last run: per bundle the clusters whose slot or run changed,
   * and bundles changed as a whole (a new head or rollout, a phase, stage or reason); a
   * cluster with the same head state keeps what it was gated to for every other bundle.
   * Undefined: everything.
   */
  changed?: GateChanges | undefined;
}

/** Clusters (per bundle) and bundles whose committed state changed since the last gating. */
export interface GateChanges {
  clusters: ReadonlyMap<string, ReadonlySet<string>>;
  bundles: ReadonlySet<string>;
}

/** The gated states, and per cluster what is held back from the head. */
export interface Gated {
  states: Map<string, DesiredState>;
  holds: Map<string, RolloutHold[]>;
  /** Renderings a state should have carried but that are not at hand (held instead). */
  missing: string[];
}

type Want = { kind: 'head' } | { kind: 'send'; r: BundleDesiredState } | { kind: 'hold' };

/** What a cluster was gated to last time, to reuse while nothing changed. */
interface Memo {
  head: DesiredState;
  /** The cluster's strategy bundles. */
  names: string[];
  /** Per strategy bundle of the cluster, in order: what it gets. */
  wants: Want[];
  /** Per strategy bundle of the cluster, in order: the digest sent, "" held, "=" the head's. */
  chosen: string[];
  state: DesiredState;
  /** Per strategy bundle of the cluster, in order: its hold, if held. */
  holdOf: (RolloutHold | undefined)[];
  holds: RolloutHold[];
  /** False when a rendering was missing: gated anew next time. */
  reusable: boolean;
}

/** Gates the fleet's head states; keeps the last result per cluster. */
export class Gate {
  private memo = new Map<string, Memo>();
  private inputs = '';

  /**
   * Gates every cluster's head state; states without rollout bundles pass as they are. A
   * cluster whose head state is the one gated last time and whose bundles' committed
   * state did not change for it (g.changed) keeps its result: gating costs what changed.
   */
  run(head: ReadonlyMap<string, DesiredState>, g: GateInputs): Gated {
    const out: Gated = { states: new Map(), holds: new Map(), missing: [] };
    const next = new Map<string, Memo>();
    const inputs = `${String(g.restored)}/${String(g.baselineFromHead)}`;
    const changed = inputs === this.inputs ? g.changed : undefined;
    this.inputs = inputs;
    // Hold reasons repeat across the clusters of a stage: made once per phase and stage.
    const reasons = new Map<string, string>();
    // A rollout with time windows says "outside the time windows" depending on the time.
    const timed = new Set<string>();
    for (const [b, s] of g.bundles)
      if (s.rollout?.strategy.stages.some((st) => st.windows.length > 0)) timed.add(b);
    for (const [cluster, state] of head) {
      if (g.strategyBundles.size === 0 && g.bundles.size === 0) {
        out.states.set(cluster, state);
        continue;
      }
      const last = this.memo.get(cluster);
      const reuse =
        last && changed && last.reusable && last.head === state
          ? (i: number, n: string): boolean =>
              !changed.bundles.has(n) &&
              !timed.has(n) &&
              changed.clusters.get(n)?.has(cluster) !== true &&
              last.wants[i] !== undefined
          : undefined;
      const m = this.gateOne(cluster, state, g, out, reasons, reuse ? last : undefined, reuse);
      next.set(cluster, m);
      out.states.set(cluster, m.state);
      if (m.holds.length > 0) out.holds.set(cluster, m.holds);
    }
    this.memo = next;
    return out;
  }

  // Gates one cluster; with `prior` (same head state), the bundles `reuse` accepts keep
  // their choice and hold from it, and only the others are chosen again.
  private gateOne(
    cluster: string,
    state: DesiredState,
    g: GateInputs,
    out: Gated,
    reasons: Map<string, string>,
    prior?: Memo,
    reuse?: (i: number, name: string) => boolean,
  ): Memo {
    const missing = out.missing.length;
    let names: string[];
    if (prior) names = prior.names;
    else {
      names = [];
      for (const b of state.bundles)
        if (g.strategyBundles.has(b.name) || g.bundles.has(b.name)) names.push(b.name);
      for (const h of state.held ?? [])
        if ((g.strategyBundles.has(h) || g.bundles.has(h)) && !names.includes(h)) names.push(h);
    }
    let heads: Map<string, BundleDesiredState> | undefined;
    const headOf = (n: string): BundleDesiredState | undefined => {
      if (!heads) {
        heads = new Map();
        for (const b of state.bundles) heads.set(b.name, b);
      }
      return heads.get(n);
    };
    let fresh = prior === undefined;
    const wants: Want[] = [];
    const holdOf: (RolloutHold | undefined)[] = [];
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      if (prior && reuse?.(i, name)) {
        wants.push(prior.wants[i] as Want);
        holdOf.push(prior.holdOf[i]);
        continue;
      }
      const headR = headOf(name);
      const w = choose(cluster, name, headR, g, out);
      wants.push(w);
      // A bundle the renderer holds on this cluster is a render failure, not a rollout hold.
      const held =
        w.kind !== 'head' && headR && !(w.kind === 'send' && w.r.digest === headR.digest);
      const h = held ? hold(cluster, name, headR, w, state, g, reasons) : undefined;
      holdOf.push(h);
      if (!prior || !sameHold(h, prior.holdOf[i])) fresh = true;
    }
    const chosen = wants.map((w) =>
      w.kind === 'head' ? '=' : w.kind === 'hold' ? '' : w.r.digest,
    );
    const holds =
      !fresh && prior ? prior.holds : (holdOf.filter((h) => h !== undefined) as RolloutHold[]);
    const reusable = out.missing.length === missing;
    const last = prior ?? this.memo.get(cluster);
    const gated =
      last && last.head === state && sameList(last.chosen, chosen)
        ? last.state
        : assemble(cluster, state, names, wants);
    return { head: state, names, wants, chosen, state: gated, holdOf, holds, reusable };
  }
}

function sameHold(a: RolloutHold | undefined, b: RolloutHold | undefined): boolean {
  if (a === b) return true;
  if (!a || !b) return false;
  return (
    a.bundle === b.bundle &&
    a.rollout === b.rollout &&
    a.reason === b.reason &&
    a.servingRevision === b.servingRevision &&
    a.targetRevision === b.targetRevision
  );
}

function hold(
  cluster: string,
  name: string,
  headR: BundleDesiredState,
  w: Want,
  state: DesiredState,
  g: GateInputs,
  reasons: Map<string, string>,
): RolloutHold {
  const bs = g.bundles.get(name);
  const serving = w.kind === 'send' ? w.r : undefined;
  const run = bs?.rollout?.clusters[cluster];
  const key = `${name}\0${run?.phase ?? ''}\0${run?.stage ?? -1}\0${run?.reason ?? ''}`;
  let reason = reasons.get(key);
  if (reason === undefined) {
    reason = bs ? holdReason(bs, cluster) : 'rollout state is not restored yet';
    reasons.set(key, reason);
  }
  return {
    bundle: name,
    rollout: bs?.rollout?.id ?? '',
    reason,
    servingRevision: serving ? (bs?.revisionOf.get(serving.digest) ?? '') : '',
    targetRevision: bs?.revisionOf.get(headR.digest) ?? state.revision,
  };
}

// The head state with each strategy bundle as chosen, and its digest computed again.
function assemble(
  cluster: string,
  state: DesiredState,
  names: readonly string[],
  wants: readonly Want[],
): DesiredState {
  if (wants.every((w) => w.kind === 'head')) return state;
  const bundles = new Map(state.bundles.map((b) => [b.name, b]));
  const held = new Set(state.held ?? []);
  names.forEach((name, i) => {
    const w = wants[i] as Want;
    if (w.kind === 'send') {
      bundles.set(name, w.r);
      held.delete(name);
    } else if (w.kind === 'hold') {
      bundles.delete(name);
      held.add(name);
    }
  });
  const list = [...bundles.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  const heldList = [...held].filter((h) => !bundles.has(h)).sort();
  if (
    sameList(
      list.map((b) => b.digest),
      state.bundles.map((b) => b.digest),
    ) &&
    sameList(heldList, state.held ?? [])
  )
    return state;
  const { held: _old, ...rest } = state;
  return {
    ...rest,
    bundles: list,
    digest: desiredStateDigest(cluster, list, heldList, state.prune),
    ...(heldList.length > 0 ? { held: heldList } : {}),
  };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// The rendering of `bundle` the cluster gets: what its slot says it runs, else (newly
// targeted, not saved yet) what it was last sent, else nothing; before rollout state is
// restored, nothing (held).
function choose(
  cluster: string,
  bundle: string,
  headR: BundleDesiredState | undefined,
  g: GateInputs,
  out: Gated,
): Want {
  if (!g.restored) return { kind: 'hold' };
  const bs = g.bundles.get(bundle);
  const slot = bs?.slots.get(cluster);
  let digest: string | undefined;
  if (slot) digest = slot.cur;
  else if (!bs && g.baselineFromHead) return { kind: 'head' };
  else digest = g.lastSent(cluster, bundle)?.digest;
  if (digest === undefined) return { kind: 'hold' };
  if (digest === headR?.digest) return { kind: 'head' };
  const r = g.lastSent(cluster, bundle);
  const found = r?.digest === digest ? r : g.rendering(digest);
  if (found) return { kind: 'send', r: found };
  out.missing.push(digest);
  return { kind: 'hold' };
}
