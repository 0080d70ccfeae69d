// One reconcile of a whole desired state: apply every bundle, then prune what each
// inventory holds but no bundle declares any more, delete bundles that disappeared, and
// write the inventories.
// Pruning follows fluxcd: only after every object of the bundle applied, because a
// failed object's identity may be incomplete (unknown kind, no scope) and must never be
// mistaken for a removed one.
import { errorMessage } from '@flotilla/common';
import type { BundleApplyResult, BundleDesiredState, DesiredState } from '@flotilla/common';
import { applySet } from '../apply/apply.js';
import { countActions, failureMessages } from '../apply/changeset.js';
import type { ChangeSetEntry } from '../apply/changeset.js';
import { deleteObjects } from '../apply/delete.js';
import type { KubeApi } from '../kube/types.js';
import { normalizeRefs, refKey, staleRefs } from '../inventory/inventory.js';
import type { Inventory, InventoryStore } from '../inventory/inventory.js';
import type { ManagedNamespaces } from '../apply/scope.js';
import { massPruneHold } from './prune-guard.js';
import type { MassPruneHold } from './prune-guard.js';

/** Overall outcome of a reconcile, in the vocabulary of acks and events. */
export type ReconcileResultKind = 'applied' | 'partial' | 'failed';

/** What one reconcile did. */
export interface ReconcileOutcome {
  result: ReconcileResultKind;
  bundles: BundleApplyResult[];
  /** Objects applied (created + configured + unchanged) and failed, over all bundles. */
  objectsApplied: number;
  objectsFailed: number;
  /** Writes made (created + configured + deleted): 0 in a steady state. */
  writes: number;
  durationMs: number;
  /** Set when the state was held by the mass-prune guard: nothing was applied or pruned. */
  held?: MassPruneHold;
}

/** Options of reconcile. */
export interface ReconcileOptions {
  /** Applies in flight per stage (default 8). */
  concurrency?: number;
  /** Namespace for namespaced objects without one (default "default"). */
  defaultNamespace?: string;
  /** Hold a state that would delete too much (sync/prune-guard.ts; default true). */
  guardMassPrune?: boolean;
  /** Namespaced mode: only these namespaces are managed (default: cluster-wide). */
  namespaces?: ManagedNamespaces;
  /** Called once the state is admitted (not held), before the first write: the agent stores it then. */
  beforeWrites?: () => Promise<void>;
  signal?: AbortSignal;
}

function bundleResult(
  name: string,
  digest: string,
  entries: readonly ChangeSetEntry[],
  extraFailures: string[] = [],
): BundleApplyResult {
  const c = countActions(entries);
  return {
    name,
    digest,
    created: c.created,
    configured: c.configured,
    unchanged: c.unchanged,
    deleted: c.deleted,
    failed: c.failed + extraFailures.length,
    failures: [...failureMessages(entries), ...extraFailures].slice(0, 10),
  };
}

/** Refs applied by each bundle in this reconcile, keyed by refKey → bundle. */
type Claims = Map<string, string>;

async function pruneBundle(
  kube: KubeApi,
  store: InventoryStore,
  bundle: BundleDesiredState,
  applied: ChangeSetEntry[],
  previous: Inventory | undefined,
  claims: Claims,
  revision: string,
  opts: ReconcileOptions,
): Promise<BundleApplyResult> {
  // A failed object is ours only if it already was: one that failed to be created (say, a
  // conflict with another owner) must not enter the inventory, or dropping it would delete it.
  const known = new Set(previous?.entries.map(refKey) ?? []);
  const current = applied
    .filter((e) => e.action !== 'failed' || known.has(refKey(e.ref)))
    .map((e) => e.ref);
  const allApplied = applied.every((e) => e.action !== 'failed');
  let pruned: ChangeSetEntry[] = [];
  let keep = current;
  if (previous && allApplied) {
    // An object another bundle now declares moved there: it leaves this inventory, undeleted.
    const stale = staleRefs(previous.entries, current).filter((r) => !claims.has(refKey(r)));
    pruned = await deleteObjects(kube, stale, { bundle: bundle.name, signal: opts.signal });
    keep = [...current, ...pruned.filter((e) => e.action === 'failed').map((e) => e.ref)];
  } else if (previous) {
    keep = [...current, ...previous.entries];
  }
  const extra: string[] = [];
  try {
    await store.write(
      { bundle: bundle.name, digest: bundle.digest, revision, entries: normalizeRefs(keep) },
      opts.signal,
    );
  } catch (err) {
    extra.push(`inventory of bundle ${bundle.name}: ${errorMessage(err)}`);
  }
  return bundleResult(bundle.name, bundle.digest, [...applied, ...pruned], extra);
}

async function removeBundle(
  kube: KubeApi,
  store: InventoryStore,
  inv: Inventory,
  claims: Claims,
  revision: string,
  opts: ReconcileOptions,
): Promise<BundleApplyResult> {
  const deleted = await deleteObjects(
    kube,
    inv.entries.filter((r) => !claims.has(refKey(r))),
    { bundle: inv.bundle, signal: opts.signal },
  );
  const left = deleted.filter((e) => e.action === 'failed').map((e) => e.ref);
  const extra: string[] = [];
  try {
    if (left.length === 0) await store.remove(inv.bundle, opts.signal);
    else await store.write({ ...inv, revision, entries: left }, opts.signal);
  } catch (err) {
    extra.push(`inventory of bundle ${inv.bundle}: ${errorMessage(err)}`);
  }
  return bundleResult(inv.bundle, '', deleted, extra);
}

/** Applies a desired state and prunes; never throws for object failures (they are in the outcome). */
export async function reconcile(
  kube: KubeApi,
  store: InventoryStore,
  state: DesiredState,
  opts: ReconcileOptions = {},
): Promise<ReconcileOutcome> {
  const started = Date.now();
  await store.ensureNamespace(opts.signal);
  const inventories = await store.list(opts.signal);
  if (opts.guardMassPrune !== false) {
    const held = await massPruneHold(kube, inventories, state, opts);
    if (held) {
      const failed = held.bundles.reduce((n, b) => n + b.failed, 0);
      return {
        result: 'failed',
        bundles: held.bundles,
        objectsApplied: 0,
        objectsFailed: failed,
        writes: 0,
        durationMs: Date.now() - started,
        held,
      };
    }
  }
  await opts.beforeWrites?.();
  // Apply every bundle before pruning any, so an object that moved between bundles is
  // claimed by its new bundle and not deleted by its old one.
  const applied = new Map<string, ChangeSetEntry[]>();
  const claims: Claims = new Map();
  for (const b of state.bundles) {
    if (opts.signal?.aborted) break;
    const entries = await applySet(kube, b.objects, {
      ...opts,
      bundle: b.name,
      force: b.forceConflicts,
    });
    applied.set(b.name, entries);
    for (const e of entries) if (e.action !== 'failed') claims.set(refKey(e.ref), b.name);
  }
  const bundles: BundleApplyResult[] = [];
  for (const b of state.bundles) {
    const entries = applied.get(b.name);
    if (!entries || opts.signal?.aborted) break;
    const others = new Map([...claims].filter(([, owner]) => owner !== b.name));
    bundles.push(
      await pruneBundle(
        kube,
        store,
        b,
        entries,
        inventories.get(b.name),
        others,
        state.revision,
        opts,
      ),
    );
  }
  // Held bundles (paused or broken at this commit, with no earlier rendering on the hub)
  // keep their objects: absence from the desired state means "unknown", not "removed".
  const desired = new Set([...state.bundles.map((b) => b.name), ...(state.held ?? [])]);
  for (const inv of inventories.values()) {
    if (desired.has(inv.bundle) || opts.signal?.aborted) continue;
    bundles.push(await removeBundle(kube, store, inv, claims, state.revision, opts));
  }
  let objectsApplied = 0;
  let objectsFailed = 0;
  let writes = 0;
  for (const b of bundles) {
    objectsApplied += b.created + b.configured + b.unchanged;
    objectsFailed += b.failed;
    writes += b.created + b.configured + b.deleted;
  }
  const result: ReconcileResultKind =
    objectsFailed === 0 ? 'applied' : objectsApplied > 0 ? 'partial' : 'failed';
  return {
    result,
    bundles,
    objectsApplied,
    objectsFailed,
    writes,
    durationMs: Date.now() - started,
  };
}
