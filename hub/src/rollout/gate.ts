// Between render and the desired-state store: each cluster's desired state gets, for every
// bundle with a rollout strategy, the rendering its rollout admits there (`cur`) instead
// of the head's, and the digest is computed again. A cluster a bundle has not reached gets
// nothing of it, with the bundle in `held` so the agent leaves whatever it has alone. Each
// such difference from the head is a hold, which status shows (the cluster is Waiting).
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

/** Gates every cluster's head state; states without rollout bundles are passed as they are. */
export function gateStates(head: ReadonlyMap<string, DesiredState>, g: GateInputs): Gated {
  const out: Gated = { states: new Map(), holds: new Map(), missing: [] };
  for (const [cluster, state] of head) {
    if (g.strategyBundles.size === 0) {
      out.states.set(cluster, state);
      continue;
    }
    out.states.set(cluster, gateOne(cluster, state, g, out));
  }
  return out;
}

type Want = { kind: 'head' } | { kind: 'send'; r: BundleDesiredState } | { kind: 'hold' };

function gateOne(cluster: string, state: DesiredState, g: GateInputs, out: Gated): DesiredState {
  const held = new Set(state.held ?? []);
  const bundles = new Map(state.bundles.map((b) => [b.name, b]));
  let changed = false;
  const holds: RolloutHold[] = [];
  for (const name of new Set([...bundles.keys(), ...held])) {
    if (!g.strategyBundles.has(name) && !g.bundles.has(name)) continue;
    const headR = bundles.get(name);
    const want = choose(cluster, name, headR, g, out);
    if (want.kind === 'head') continue;
    const bs = g.bundles.get(name);
    const serving = want.kind === 'send' ? want.r : undefined;
    if (serving?.digest === headR?.digest) continue;
    changed = true;
    if (serving) {
      bundles.set(name, serving);
      held.delete(name);
    } else {
      bundles.delete(name);
      held.add(name);
    }
    // A bundle the renderer holds on this cluster is a render failure, not a rollout hold.
    if (!headR) continue;
    holds.push({
      bundle: name,
      rollout: bs?.rollout?.id ?? '',
      reason: bs ? holdReason(bs, cluster) : 'rollout state is not restored yet',
      servingRevision: serving ? (bs?.revisionOf.get(serving.digest) ?? '') : '',
      targetRevision: bs?.revisionOf.get(headR.digest) ?? state.revision,
    });
  }
  if (holds.length > 0) out.holds.set(cluster, holds);
  if (!changed) return state;
  const list = [...bundles.values()].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
  const heldList = [...held].filter((h) => !bundles.has(h)).sort();
  const { held: _old, ...rest } = state;
  return {
    ...rest,
    bundles: list,
    digest: desiredStateDigest(cluster, list, heldList, state.prune),
    ...(heldList.length > 0 ? { held: heldList } : {}),
  };
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
