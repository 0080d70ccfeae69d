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
  /** Per strategy bundle of the cluster, in order: the digest sent, "" held, "=" the head's. */
  chosen: string[];
  state: DesiredState;
}

/** Gates the fleet's head states; keeps the last result per cluster. */
export class Gate {
  private memo = new Map<string, Memo>();

  /** Gates every cluster's head state; states without rollout bundles pass as they are. */
  run(head: ReadonlyMap<string, DesiredState>, g: GateInputs): Gated {
    const out: Gated = { states: new Map(), holds: new Map(), missing: [] };
    const next = new Map<string, Memo>();
    // Hold reasons repeat across the clusters of a stage: made once per phase and stage.
    const reasons = new Map<string, string>();
    for (const [cluster, state] of head) {
      if (g.strategyBundles.size === 0 && g.bundles.size === 0) {
        out.states.set(cluster, state);
        continue;
      }
      const m = this.gateOne(cluster, state, g, out, reasons);
      next.set(cluster, m);
      out.states.set(cluster, m.state);
    }
    this.memo = next;
    return out;
  }

  private gateOne(
    cluster: string,
    state: DesiredState,
    g: GateInputs,
    out: Gated,
    reasons: Map<string, string>,
  ): Memo {
    const names: string[] = [];
    for (const b of state.bundles)
      if (g.strategyBundles.has(b.name) || g.bundles.has(b.name)) names.push(b.name);
    for (const h of state.held ?? [])
      if ((g.strategyBundles.has(h) || g.bundles.has(h)) && !names.includes(h)) names.push(h);
    const heads = new Map<string, BundleDesiredState>();
    for (const b of state.bundles) heads.set(b.name, b);
    const wants = names.map((n) => choose(cluster, n, heads.get(n), g, out));
    const chosen = wants.map((w) =>
      w.kind === 'head' ? '=' : w.kind === 'hold' ? '' : w.r.digest,
    );
    const holds: RolloutHold[] = [];
    names.forEach((name, i) => {
      const headR = heads.get(name);
      const w = wants[i] as Want;
      // A bundle the renderer holds on this cluster is a render failure, not a rollout hold.
      if (w.kind === 'head' || !headR || (w.kind === 'send' && w.r.digest === headR.digest)) return;
      holds.push(hold(cluster, name, headR, w, state, g, reasons));
    });
    if (holds.length > 0) out.holds.set(cluster, holds);
    const last = this.memo.get(cluster);
    if (last && last.head === state && sameList(last.chosen, chosen))
      return { head: state, chosen, state: last.state };
    return { head: state, chosen, state: assemble(cluster, state, names, wants) };
  }
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
