// One reconcile of a whole desired state: every bundle through its steps (bundle-steps.ts:
// dependencies, namespace, Helm hooks, apply, prune, inventory), then bundles that left
// the state are removed. A bundle that waits (for a dependency or a hook) is reported as
// waiting and the outcome says what to watch to carry on; nothing here ever blocks on a
// hook or a dependency.
import type { BundleApplyResult, DesiredState } from '@flotilla/common';
import type { KubeApi } from '../kube/types.js';
import { refKey } from '../inventory/inventory.js';
import type { InventoryStore } from '../inventory/inventory.js';
import type { ManagedNamespaces } from '../apply/scope.js';
import type { DeleteHookStore } from '../hooks/store.js';
import { finishBundle, removeBundle, stageBundle } from './bundle-steps.js';
import type { Claims, Staged, Wake } from './bundle-steps.js';
import { dependencyOrder } from './dependencies.js';
import type { BundleProgress, DependencyHealth } from './dependencies.js';
import { massPruneHold } from './prune-guard.js';
import type { MassPruneHold } from './prune-guard.js';

export type { Wake } from './bundle-steps.js';

/** Overall outcome of a reconcile, in the vocabulary of acks and events. */
export type ReconcileResultKind = 'applied' | 'partial' | 'failed' | 'waiting';

/** What one reconcile did. */
export interface ReconcileOutcome {
  /** waiting: nothing failed, but some bundle waits for a dependency or a hook. */
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
  /** What to watch to reconcile again: dependencies turning Ready, hook objects finishing. */
  wakes: Wake[];
  /** Bundles of the state whose objects were not applied this time (they wait, or a pre hook stopped them). */
  notApplied: string[];
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
  /** Health of bundles for dependsOn (default none: a dependency only needs to be applied). */
  dependencyHealth?: DependencyHealth;
  /** Where pre-delete hooks are kept for bundle removals (default none: they are not run). */
  deleteHooks?: DeleteHookStore;
  /** A hook Job or Pod unfinished after this long fails its bundle (default durations.hookTimeout). */
  hookTimeoutMs?: number;
  now?: () => number;
  signal?: AbortSignal;
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
        wakes: [],
        notApplied: state.bundles.map((b) => b.name),
      };
    }
  }
  await opts.beforeWrites?.();
  // Every bundle's first step (dependencies first) before any prune, so an object that
  // moved between bundles is claimed by its new bundle and not deleted by its old one.
  const progress = new Map<string, BundleProgress>();
  const staged: Staged[] = [];
  const claims: Claims = new Map();
  for (const b of dependencyOrder(state.bundles)) {
    if (opts.signal?.aborted) break;
    const s = await stageBundle(kube, b, inventories.get(b.name), state, progress, opts);
    staged.push(s);
    progress.set(b.name, s.progress);
    for (const e of s.applied ?? []) if (e.action !== 'failed') claims.set(refKey(e.ref), b.name);
  }
  const bundles: BundleApplyResult[] = [];
  const wakes: Wake[] = [];
  const byName = new Map(staged.map((s) => [s.bundle.name, s]));
  for (const b of state.bundles) {
    const s = byName.get(b.name);
    if (!s || opts.signal?.aborted) break;
    const others = new Map([...claims].filter(([, owner]) => owner !== b.name));
    const done = await finishBundle(
      kube,
      store,
      s,
      inventories.get(b.name),
      others,
      state.revision,
      opts,
    );
    // The chart version travels with the result, so history shows which one was applied.
    bundles.push(b.chart ? { ...done.result, chart: b.chart } : done.result);
    if (done.wake) wakes.push(done.wake);
  }
  // Held bundles (paused or broken at this commit, with no earlier rendering on the hub)
  // keep their objects: absence from the desired state means "unknown", not "removed".
  const desired = new Set([...state.bundles.map((b) => b.name), ...(state.held ?? [])]);
  for (const inv of inventories.values()) {
    if (desired.has(inv.bundle) || opts.signal?.aborted) continue;
    const done = await removeBundle(kube, store, inv, claims, state.revision, opts);
    bundles.push(done.result);
    if (done.wake) wakes.push(done.wake);
  }
  let objectsApplied = 0;
  let objectsFailed = 0;
  let writes = 0;
  for (const b of bundles) {
    objectsApplied += b.created + b.configured + b.unchanged;
    objectsFailed += b.failed;
    writes += b.created + b.configured + b.deleted;
  }
  const waiting = bundles.some((b) => b.waiting !== undefined);
  const result: ReconcileResultKind =
    objectsFailed > 0
      ? objectsApplied > 0
        ? 'partial'
        : 'failed'
      : waiting
        ? 'waiting'
        : 'applied';
  return {
    result,
    bundles,
    objectsApplied,
    objectsFailed,
    writes,
    durationMs: Date.now() - started,
    wakes,
    notApplied: staged.filter((s) => !s.applied).map((s) => s.bundle.name),
  };
}
