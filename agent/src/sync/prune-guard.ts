// Mass-prune safety. Before a desired state is applied, count what it would delete: the
// objects in the inventories that no bundle declares any more. A state that would delete
// more than the policy's share of everything Flotilla manages on the cluster, or that
// empties a bundle which still has objects, is held: nothing of it is applied or pruned.
// The agent decides because it holds the inventories, which survive hub restarts; the hub
// carries the policy (hub.yaml prune.maxShare) and the opt-ins (allowMassPrune) in the
// desired state. A path that vanished from the fleet repo is already a render error on
// the hub, so the bundle is held there and never reaches this check as an empty bundle.
import { DEFAULT_MAX_PRUNE_SHARE } from '@flotilla/common';
import type { BundleApplyResult, DesiredState, KubeObject } from '@flotilla/common';
import { prepareObject } from '../apply/apply.js';
import { refKey } from '../inventory/inventory.js';
import type { Inventory } from '../inventory/inventory.js';
import type { KubeApi, ObjectRef } from '../kube/types.js';
import { describeRef, refOf } from '../kube/types.js';

/** What one bundle's inventory would lose. */
export interface PruneCount {
  bundle: string;
  /** Objects it would delete. */
  deleting: ObjectRef[];
  /** Objects its inventory holds. */
  managed: number;
  /** The bundle is no longer in this cluster's desired state (deleted, or no longer targeted). */
  removed: boolean;
  /** Its new desired state has no objects while its inventory has some. */
  emptied: boolean;
  /** bundle.yaml allowMassPrune: its deletions are neither counted nor held. */
  allowed: boolean;
}

/** A held desired state: why, and what each bundle reports. */
export interface MassPruneHold {
  /** Objects the state would delete (bundles that opted in excluded). */
  deleting: number;
  /** Objects Flotilla manages on the cluster now (all inventories). */
  managed: number;
  maxShare: number;
  /** One line for status, the ack and the event. */
  message: string;
  /** Per-bundle results: held bundles failed with the reason, unchanged ones as they are. */
  bundles: BundleApplyResult[];
}

/** Options of massPruneHold. */
export interface GuardOptions {
  /** Namespace for namespaced objects without one, as the apply uses (default "default"). */
  defaultNamespace?: string;
  signal?: AbortSignal;
}

const pct = (share: number): string => `${Math.round(share * 1000) / 10} %`;

// Refs of a bundle's objects as they will be applied (namespace defaulted or dropped), so
// they compare with the inventory. A kind discovery does not know yet (its CRD comes in
// the same state) keeps the object's own namespace, or the default one.
async function desiredRefs(
  kube: Pick<KubeApi, 'resource'>,
  objects: readonly KubeObject[],
  opts: GuardOptions,
): Promise<ObjectRef[]> {
  const refs: ObjectRef[] = [];
  for (const obj of objects) {
    let namespaced = true;
    try {
      namespaced = (await kube.resource(obj.apiVersion, obj.kind, opts.signal)).namespaced;
    } catch (err) {
      if (opts.signal?.aborted) throw err;
    }
    refs.push(refOf(prepareObject(obj, namespaced, opts)));
  }
  return refs;
}

/** What each inventory would lose if `state` were applied; objects another bundle claims move, they are not deleted. */
export async function countPrunes(
  kube: Pick<KubeApi, 'resource'>,
  inventories: ReadonlyMap<string, Inventory>,
  state: DesiredState,
  opts: GuardOptions = {},
): Promise<PruneCount[]> {
  const owner = new Map<string, string>();
  for (const b of state.bundles)
    for (const r of await desiredRefs(kube, b.objects, opts)) owner.set(refKey(r), b.name);
  const bundles = new Map(state.bundles.map((b) => [b.name, b]));
  const held = new Set(state.held ?? []);
  const out: PruneCount[] = [];
  for (const inv of inventories.values()) {
    const b = bundles.get(inv.bundle);
    // A held bundle keeps its objects: absence means "unknown", not "removed".
    if (!b && held.has(inv.bundle)) continue;
    const deleting = inv.entries.filter((r) => !owner.has(refKey(r)));
    out.push({
      bundle: inv.bundle,
      deleting,
      managed: inv.entries.length,
      removed: !b,
      emptied: b !== undefined && b.objects.length === 0 && deleting.length > 0,
      allowed: b?.allowMassPrune === true,
    });
  }
  return out.sort((x, y) => (x.bundle < y.bundle ? -1 : x.bundle > y.bundle ? 1 : 0));
}

function listRefs(refs: readonly ObjectRef[], max = 3): string {
  const shown = refs.slice(0, max).map(describeRef).join(', ');
  return refs.length > max ? `${shown} and ${refs.length - max} more` : shown;
}

function describeCount(c: PruneCount): string {
  const what = c.removed ? ' (no longer in this cluster\u2019s desired state)' : '';
  return `bundle ${c.bundle}${what}: ${c.deleting.length} of its ${c.managed} (${listRefs(c.deleting)})`;
}

/**
 * The hold for `state`, or undefined when it may be applied. Held: a bundle emptied while
 * it has objects, or more than the policy's share of all managed objects deleted; unless
 * the cluster opted in, or (per bundle) the bundle did.
 */
export async function massPruneHold(
  kube: Pick<KubeApi, 'resource'>,
  inventories: ReadonlyMap<string, Inventory>,
  state: DesiredState,
  opts: GuardOptions = {},
): Promise<MassPruneHold | undefined> {
  const policy = state.prune ?? { maxShare: DEFAULT_MAX_PRUNE_SHARE };
  if (policy.allowMassPrune === true) return undefined;
  const managed = new Set([...inventories.values()].flatMap((i) => i.entries.map(refKey))).size;
  if (managed === 0) return undefined;
  const counts = (await countPrunes(kube, inventories, state, opts)).filter(
    (c) => !c.allowed && c.deleting.length > 0,
  );
  const deleting = counts.reduce((n, c) => n + c.deleting.length, 0);
  const emptied = counts.filter((c) => c.emptied);
  const tooMany = deleting / managed > policy.maxShare;
  if (!tooMany && emptied.length === 0) return undefined;
  const reasons: string[] = emptied.map(
    (c) =>
      `bundle ${c.bundle} has no objects at this revision but manages ${c.managed} (did its manifests vanish?)`,
  );
  if (tooMany)
    reasons.push(
      `it would delete ${deleting} of the ${managed} objects Flotilla manages on this cluster (${pct(deleting / managed)}; prune.maxShare allows ${pct(policy.maxShare)})`,
    );
  const shown = counts.slice(0, 5).map(describeCount);
  if (counts.length > 5) shown.push(`${counts.length - 5} more bundles`);
  const message =
    `mass prune held at revision ${state.revision.slice(0, 12)}: ${reasons.join('; ')}: ${shown.join('; ')}. ` +
    `Nothing of this revision is applied or pruned. To allow it set spec.allowMassPrune: true in the bundle's bundle.yaml or in clusters/${state.cluster}.yaml, or push a commit that keeps the objects`;
  return {
    deleting,
    managed,
    maxShare: policy.maxShare,
    message,
    bundles: heldResults(state, inventories, counts),
  };
}

// Every bundle of the held state, and every removed one, as the event reports it: a bundle
// already at its new content is unchanged (it is where the commit wants it); any other was
// not applied, and says why. failed counts the objects held back.
function heldResults(
  state: DesiredState,
  inventories: ReadonlyMap<string, Inventory>,
  counts: readonly PruneCount[],
): BundleApplyResult[] {
  const zero = { created: 0, configured: 0, unchanged: 0, deleted: 0, failed: 0 };
  const byBundle = new Map(counts.map((c) => [c.bundle, c]));
  const optIn = (bundle: string): string =>
    `to allow it set spec.allowMassPrune: true in bundles/${bundle}/bundle.yaml or clusters/${state.cluster}.yaml`;
  const results: BundleApplyResult[] = state.bundles.map((b) => {
    const c = byBundle.get(b.name);
    if (!c && inventories.get(b.name)?.digest === b.digest)
      return { name: b.name, digest: b.digest, ...zero, unchanged: b.objects.length, failures: [] };
    const failures = c
      ? [
          `mass prune held: would delete ${c.deleting.length} of its ${c.managed} objects (${listRefs(c.deleting)}); ${optIn(b.name)}`,
        ]
      : [
          `not applied: this cluster's desired state at revision ${state.revision.slice(0, 12)} is held (mass prune, see the cluster's status)`,
        ];
    const failed = c ? c.deleting.length : Math.max(1, b.objects.length);
    return { name: b.name, digest: b.digest, ...zero, failed, failures };
  });
  for (const c of counts.filter((x) => x.removed))
    results.push({
      name: c.bundle,
      digest: '',
      ...zero,
      failed: c.deleting.length,
      failures: [
        `mass prune held: removing the bundle would delete its ${c.deleting.length} objects (${listRefs(c.deleting)}); to allow it set spec.allowMassPrune: true in clusters/${state.cluster}.yaml`,
      ],
    });
  return results;
}
