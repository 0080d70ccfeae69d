// The steps of one bundle within a reconcile. First (in dependency order): wait for
// dependencies, create the namespace, run the pre-install/pre-upgrade hooks (after the
// bundle's CRDs, as helm installs them first), apply the objects. Then, once every bundle
// applied: prune, run the post hooks, store the pre-delete hooks, prune a namespace the
// bundle no longer uses, write the inventory. And for a bundle that left the desired
// state: its pre-delete hooks, then deleting everything it had.
// Pruning follows fluxcd: only after every object of the bundle applied, because a failed
// object's identity may be incomplete (unknown kind, no scope) and must never be mistaken
// for a removed one.
import { errorMessage } from '@flotilla/common';
import type {
  BundleApplyResult,
  BundleDesiredState,
  BundleWaiting,
  DesiredState,
  HookSpec,
} from '@flotilla/common';
import { applySet } from '../apply/apply.js';
import { countActions, failureMessages } from '../apply/changeset.js';
import type { ChangeSetEntry } from '../apply/changeset.js';
import { deleteObjects } from '../apply/delete.js';
import { isCrd } from '../apply/order.js';
import { advanceHooks, hooksAt, phaseOf, runFor } from '../hooks/run.js';
import type { HookStep, HookWake } from '../hooks/run.js';
import { deleteHooksDigest } from '../hooks/store.js';
import type { DeleteHookStore } from '../hooks/store.js';
import { normalizeRefs, refKey, staleRefs } from '../inventory/inventory.js';
import type {
  HookRun,
  Inventory,
  InventoryStore,
  NamespaceRecord,
} from '../inventory/inventory.js';
import type { ManagedNamespaces } from '../apply/scope.js';
import type { KubeApi } from '../kube/types.js';
import { dependencyWait } from './dependencies.js';
import type { BundleProgress, DependencyHealth } from './dependencies.js';
import { ensureNamespace, pruneNamespace } from './namespace.js';

/** Something the agent watches to reconcile again: a dependency turning Ready, or a hook object. */
export type Wake = { kind: 'bundle'; bundle: string } | ({ kind: 'object' } & HookWake);

/** What the steps need from reconcile's options. */
export interface StepOptions {
  concurrency?: number;
  defaultNamespace?: string;
  namespaces?: ManagedNamespaces;
  dependencyHealth?: DependencyHealth;
  deleteHooks?: DeleteHookStore;
  hookTimeoutMs?: number;
  now?: () => number;
  signal?: AbortSignal;
}

/** A bundle after the first step. */
export interface Staged {
  bundle: BundleDesiredState;
  /** Entries of its objects when they were applied this time; undefined when it stopped before. */
  applied?: ChangeSetEntry[];
  /** Entries of what was done before the objects: the namespace, CRDs ahead of pre hooks. */
  extra: ChangeSetEntry[];
  failures: string[];
  waiting?: BundleWaiting;
  wake?: Wake;
  run?: HookRun;
  namespace?: NamespaceRecord;
  /** Waiting for a dependency: nothing of it was touched. */
  untouched?: boolean;
  progress: BundleProgress;
}

/** A bundle's result for acks and events. */
export function bundleResult(
  name: string,
  digest: string,
  entries: readonly ChangeSetEntry[],
  extraFailures: string[] = [],
  waiting?: BundleWaiting,
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
    ...(waiting ? { waiting } : {}),
  };
}

function hookOpts(b: { name: string }, opts: StepOptions) {
  return {
    bundle: b.name,
    defaultNamespace: opts.defaultNamespace,
    namespaces: opts.namespaces,
    timeoutMs: opts.hookTimeoutMs,
    now: opts.now,
    signal: opts.signal,
  };
}

// A phase's hooks all finished in this run (ids are "<phase>|<key>", one per hook).
function phaseDone(hooks: readonly HookSpec[] | undefined, run: HookRun, stage: 'pre' | 'post') {
  const phase = phaseOf(run.mode, stage);
  if (!phase) return true;
  const finished = run.done.filter((id) => id.startsWith(`${phase}|`)).length;
  return finished >= hooksAt(hooks, phase).length;
}

function stopped(s: Omit<Staged, 'progress'>, step?: HookStep): Staged {
  const wake: Wake | undefined = step?.wake ? { kind: 'object', ...step.wake } : s.wake;
  const failures = step?.message && step.status !== 'waiting' ? [step.message] : s.failures;
  const waiting = step?.waiting ?? s.waiting;
  const failure = failures[0] ?? failureMessages(s.extra)[0];
  const progress: BundleProgress =
    failure !== undefined
      ? { state: 'failed', reason: failure }
      : { state: 'waiting', reason: waiting?.reason ?? 'waiting' };
  return { ...s, failures, ...(waiting ? { waiting } : {}), ...(wake ? { wake } : {}), progress };
}

/** First step of a bundle: dependencies, namespace, pre hooks, objects. */
export async function stageBundle(
  kube: KubeApi,
  b: BundleDesiredState,
  previous: Inventory | undefined,
  state: DesiredState,
  progress: ReadonlyMap<string, BundleProgress>,
  opts: StepOptions,
): Promise<Staged> {
  const base: Omit<Staged, 'progress'> = { bundle: b, extra: [], failures: [] };
  const waitFor = dependencyWait(b, state, progress, opts.dependencyHealth);
  if (waitFor)
    return stopped({
      ...base,
      untouched: true,
      waiting: waitFor.waiting,
      ...(waitFor.onHealth ? { wake: { kind: 'bundle', bundle: waitFor.waiting.for } } : {}),
    });
  if (b.namespace) {
    const before = previous?.namespace;
    const ns = await ensureNamespace(
      kube,
      b.namespace,
      b.name,
      before?.name === b.namespace.name && before.created,
      { namespaces: opts.namespaces, signal: opts.signal },
    );
    base.extra.push(ns.entry);
    base.namespace = { name: b.namespace.name, created: ns.created };
    // Its entry says why; nothing else of the bundle can go into a namespace that is not
    // there. (A namespaced-mode agent only refuses the labels of a namespace its install made.)
    if (ns.entry.action === 'failed' && opts.namespaces === undefined) return stopped(base);
  }
  const applyOpts = { ...opts, bundle: b.name, force: b.forceConflicts };
  let objects = b.objects;
  let early: ChangeSetEntry[] = [];
  if (b.hooks && b.hooks.length > 0) {
    base.run = runFor(previous, b.digest);
    const pre = phaseOf(base.run.mode, 'pre');
    if (pre && hooksAt(b.hooks, pre).length > 0) {
      // Like helm install, the chart's CRDs come first: a pre hook may use them.
      early = await applySet(kube, objects.filter(isCrd), applyOpts);
      objects = objects.filter((o) => !isCrd(o));
      const step = await advanceHooks(kube, b.hooks, base.run, pre, hookOpts(b, opts));
      base.run = step.run;
      if (step.status !== 'done')
        return stopped({ ...base, extra: [...base.extra, ...early] }, step);
    }
  }
  const applied = [...early, ...(await applySet(kube, objects, applyOpts))];
  const failed = [...base.extra, ...applied].find((e) => e.action === 'failed');
  const postPending = base.run !== undefined && !phaseDone(b.hooks, base.run, 'post');
  return {
    ...base,
    applied,
    progress: failed
      ? { state: 'failed', reason: failureMessages([failed])[0] as string }
      : postPending
        ? { state: 'waiting', reason: 'its post hooks have not finished' }
        : { state: 'applied' },
  };
}

/** Refs applied by each bundle in this reconcile, keyed by refKey → bundle. */
export type Claims = Map<string, string>;

/** Second step of a bundle: prune, post hooks, stored pre-delete hooks, old namespace, inventory. */
export async function finishBundle(
  kube: KubeApi,
  store: InventoryStore,
  s: Staged,
  previous: Inventory | undefined,
  claims: Claims,
  revision: string,
  opts: StepOptions,
): Promise<{ result: BundleApplyResult; wake?: Wake }> {
  const b = s.bundle;
  if (s.untouched)
    return { result: bundleResult(b.name, b.digest, [], [], s.waiting), ...wakeOf(s) };
  if (!s.applied) {
    // Stopped before its objects (namespace or a pre hook): record what was done.
    const done = s.extra.filter((e) => e.action !== 'failed' && e.ref.kind !== 'Namespace');
    const extra: string[] = [];
    await writeInventory(
      store,
      {
        bundle: b.name,
        digest: previous?.digest ?? '',
        revision: previous?.revision ?? '',
        entries: normalizeRefs([...(previous?.entries ?? []), ...done.map((e) => e.ref)]),
        ...(s.run ? { hooks: s.run } : {}),
        ...namespaceField(s.namespace ?? previous?.namespace),
        ...(previous?.deleteHooks ? { deleteHooks: previous.deleteHooks } : {}),
      },
      extra,
      opts,
    );
    return {
      result: bundleResult(b.name, b.digest, s.extra, [...s.failures, ...extra], s.waiting),
      ...wakeOf(s),
    };
  }
  // A failed object is ours only if it already was: one that failed to be created (say, a
  // conflict with another owner) must not enter the inventory, or dropping it would delete it.
  const known = new Set(previous?.entries.map(refKey) ?? []);
  const current = s.applied
    .filter((e) => e.action !== 'failed' || known.has(refKey(e.ref)))
    .map((e) => e.ref);
  const allApplied = s.applied.every((e) => e.action !== 'failed');
  let pruned: ChangeSetEntry[] = [];
  let keep = current;
  if (previous && allApplied) {
    // An object another bundle now declares moved there: it leaves this inventory, undeleted.
    const stale = staleRefs(previous.entries, current).filter((r) => !claims.has(refKey(r)));
    pruned = await deleteObjects(kube, stale, { bundle: b.name, signal: opts.signal });
    keep = [...current, ...pruned.filter((e) => e.action === 'failed').map((e) => e.ref)];
  } else if (previous) {
    keep = [...current, ...previous.entries];
  }
  const extra: string[] = [];
  let run = s.run;
  let waiting: BundleWaiting | undefined;
  let wake: Wake | undefined;
  let deleteHooks = previous?.deleteHooks;
  let namespace = s.namespace;
  if (allApplied) {
    const post = run ? phaseOf(run.mode, 'post') : undefined;
    if (run && post && hooksAt(b.hooks, post).length > 0) {
      const step = await advanceHooks(kube, b.hooks ?? [], run, post, hookOpts(b, opts));
      run = step.run;
      if (step.status === 'waiting') waiting = step.waiting;
      else if (step.message) extra.push(step.message);
      if (step.wake) wake = { kind: 'object', ...step.wake };
    }
    deleteHooks = await storeDeleteHooks(b, previous, opts, extra);
    // The namespace it no longer uses: pruned once, when it is left empty (docs/fleet-repo.md).
    const old = previous?.namespace;
    if (old?.created && old.name !== b.namespace?.name)
      pruned.push(await pruneNamespace(kube, old.name, b.name, opts.signal));
  } else if (!namespace && previous?.namespace) {
    namespace = previous.namespace;
  }
  await writeInventory(
    store,
    {
      bundle: b.name,
      digest: b.digest,
      revision,
      entries: normalizeRefs(keep),
      ...(run ? { hooks: run } : {}),
      ...namespaceField(namespace),
      ...(deleteHooks ? { deleteHooks } : {}),
    },
    extra,
    opts,
  );
  const entries = [...s.extra, ...s.applied, ...pruned];
  return {
    result: bundleResult(b.name, b.digest, entries, extra, waiting),
    ...(wake ? { wake } : {}),
  };
}

function wakeOf(s: Staged): { wake?: Wake } {
  return s.wake ? { wake: s.wake } : {};
}

function namespaceField(ns: NamespaceRecord | undefined): { namespace?: NamespaceRecord } {
  return ns ? { namespace: ns } : {};
}

async function writeInventory(
  store: InventoryStore,
  inv: Inventory,
  failures: string[],
  opts: StepOptions,
): Promise<void> {
  try {
    await store.write(inv, opts.signal);
  } catch (err) {
    failures.push(`inventory of bundle ${inv.bundle}: ${errorMessage(err)}`);
  }
}

// The bundle's pre-delete hooks, kept for its removal; returns the digest now recorded.
async function storeDeleteHooks(
  b: BundleDesiredState,
  previous: Inventory | undefined,
  opts: StepOptions,
  failures: string[],
): Promise<string | undefined> {
  const hooks = hooksAt(b.hooks, 'pre-delete');
  const digest = hooks.length > 0 ? deleteHooksDigest(hooks) : undefined;
  if (!opts.deleteHooks || digest === previous?.deleteHooks) return previous?.deleteHooks;
  try {
    if (digest) await opts.deleteHooks.write(b.name, hooks, opts.signal);
    else await opts.deleteHooks.remove(b.name, opts.signal);
    return digest;
  } catch (err) {
    failures.push(`pre-delete hooks of bundle ${b.name}: ${errorMessage(err)}`);
    return previous?.deleteHooks;
  }
}

/** A bundle no longer in the desired state: its pre-delete hooks, then everything it had, then its namespace. */
export async function removeBundle(
  kube: KubeApi,
  store: InventoryStore,
  inv: Inventory,
  claims: Claims,
  revision: string,
  opts: StepOptions,
): Promise<{ result: BundleApplyResult; wake?: Wake }> {
  const extra: string[] = [];
  const hooks = inv.deleteHooks && opts.deleteHooks ? await readDeleteHooks(inv, opts, extra) : [];
  // Unreadable pre-delete hooks: delete nothing rather than skip them; retried.
  if (!hooks) return { result: bundleResult(inv.bundle, '', [], extra) };
  let run: HookRun | undefined;
  if (hooksAt(hooks, 'pre-delete').length > 0) {
    const step = await advanceHooks(
      kube,
      hooks,
      runFor(inv, '', 'delete'),
      'pre-delete',
      hookOpts({ name: inv.bundle }, opts),
    );
    run = step.run;
    if (step.status !== 'done') {
      await writeInventory(store, { ...inv, hooks: step.run }, extra, opts);
      const failures = step.status === 'waiting' ? extra : [...extra, step.message ?? ''];
      return {
        result: bundleResult(inv.bundle, '', [], failures, step.waiting),
        ...(step.wake ? { wake: { kind: 'object', ...step.wake } } : {}),
      };
    }
  }
  const deleted = await deleteObjects(
    kube,
    inv.entries.filter((r) => !claims.has(refKey(r))),
    { bundle: inv.bundle, signal: opts.signal },
  );
  const left = deleted.filter((e) => e.action === 'failed').map((e) => e.ref);
  try {
    if (left.length === 0) {
      if (inv.namespace?.created)
        deleted.push(await pruneNamespace(kube, inv.namespace.name, inv.bundle, opts.signal));
      if (inv.deleteHooks) await opts.deleteHooks?.remove(inv.bundle, opts.signal);
      await store.remove(inv.bundle, opts.signal);
    } else
      await store.write(
        { ...inv, revision, entries: left, ...(run ? { hooks: run } : {}) },
        opts.signal,
      );
  } catch (err) {
    extra.push(`inventory of bundle ${inv.bundle}: ${errorMessage(err)}`);
  }
  return { result: bundleResult(inv.bundle, '', deleted, extra) };
}

async function readDeleteHooks(
  inv: Inventory,
  opts: StepOptions,
  failures: string[],
): Promise<HookSpec[] | undefined> {
  try {
    return (await opts.deleteHooks?.read(inv.bundle, opts.signal)) ?? [];
  } catch (err) {
    failures.push(`pre-delete hooks of bundle ${inv.bundle}: ${errorMessage(err)}`);
    return undefined;
  }
}
