// Server-side apply of one object and of a set, fluxcd/pkg ssa style: dry-run first,
// write only what would change, so a steady state makes no writes and no
// resourceVersion churn. One failing object never stops the others.
import { BUNDLE_LABEL, errorMessage } from '@flotilla/common';
import type { KubeObject } from '@flotilla/common';
import type { KubeApi, ObjectRef } from '../kube/types.js';
import { refOf } from '../kube/types.js';
import { entry } from './changeset.js';
import type { ChangeSetEntry } from './changeset.js';
import { sameObject } from './diff.js';
import { mapLimit } from './limit.js';
import { groupByStage, isCrd, stageOf } from './order.js';
import { refusal } from './scope.js';
import type { ManagedNamespaces } from './scope.js';
import { waitForCrds } from './wait.js';

/** Options of applyObject and applySet. */
export interface ApplyOptions {
  /** Bundle name written to the flotilla.dev/bundle label; no label when absent. */
  bundle?: string;
  /** Take over fields owned by another field manager (default false: report the conflict as failed). */
  force?: boolean;
  /** Namespace for namespaced objects that have none (default "default"). */
  defaultNamespace?: string;
  /** Requests in flight per stage (default 8). */
  concurrency?: number;
  /** How long to wait for CRDs to be Established (default 60 000 ms). */
  crdTimeoutMs?: number;
  /** Namespaced mode: only objects in these namespaces are applied, the rest fail as refused (default: cluster-wide). */
  namespaces?: ManagedNamespaces;
  signal?: AbortSignal;
}

/** Defaults of ApplyOptions. */
export const APPLY_DEFAULTS = {
  defaultNamespace: 'default',
  concurrency: 8,
  crdTimeoutMs: 60_000,
} as const;

/** The object as it will be sent: bundle label set, namespace defaulted (or dropped for cluster-scoped kinds). */
export function prepareObject(
  obj: KubeObject,
  namespaced: boolean,
  opts: Pick<ApplyOptions, 'bundle' | 'defaultNamespace'>,
): KubeObject {
  const metadata = { ...obj.metadata };
  if (opts.bundle) metadata.labels = { ...(metadata.labels ?? {}), [BUNDLE_LABEL]: opts.bundle };
  if (namespaced)
    metadata.namespace =
      metadata.namespace || opts.defaultNamespace || APPLY_DEFAULTS.defaultNamespace;
  else delete metadata.namespace;
  return { ...obj, metadata };
}

/** Applies one object; the entry's ref carries the namespace actually used. */
export async function applyObject(
  kube: KubeApi,
  obj: KubeObject,
  opts: ApplyOptions = {},
): Promise<ChangeSetEntry> {
  let ref: ObjectRef = refOf(obj);
  try {
    const info = await kube.resource(obj.apiVersion, obj.kind, opts.signal);
    const prepared = prepareObject(obj, info.namespaced, opts);
    ref = refOf(prepared);
    const force = opts.force ?? false;
    const dryRun = await kube.apply(prepared, { force, dryRun: true, signal: opts.signal });
    const live = await kube.get(ref, opts.signal);
    if (live && sameObject(dryRun, live)) return entry(ref, 'unchanged');
    await kube.apply(prepared, { force, signal: opts.signal });
    return entry(ref, live ? 'configured' : 'created');
  } catch (err) {
    return entry(ref, 'failed', errorMessage(err));
  }
}

/**
 * Applies a set in stages (CRDs, wait for them, Namespaces, cluster-scoped, namespaced),
 * at most `concurrency` objects in flight. Returns one entry per object, in stage order.
 */
export async function applySet(
  kube: KubeApi,
  objects: readonly KubeObject[],
  opts: ApplyOptions = {},
): Promise<ChangeSetEntry[]> {
  const limit = opts.concurrency ?? APPLY_DEFAULTS.concurrency;
  const results: ChangeSetEntry[] = [];
  // CRDs are cluster-scoped: refused at once in namespaced mode, no discovery needed.
  const crdRefusal = refusal({}, false, opts.namespaces);
  const crds = crdRefusal ? [] : objects.filter(isCrd);
  if (crdRefusal)
    for (const o of objects.filter(isCrd)) results.push(entry(refOf(o), 'failed', crdRefusal));
  const rest = objects.filter((o) => !isCrd(o));
  results.push(...(await mapLimit(crds, limit, (o) => applyObject(kube, o, opts))));
  const applied = crds.filter((_c, i) => results[i]?.action !== 'failed');
  if (applied.length > 0) {
    // A CRD that never gets Established is reported; its CRs then fail on discovery.
    const notReady = await waitForCrds(kube, applied, {
      timeoutMs: opts.crdTimeoutMs ?? APPLY_DEFAULTS.crdTimeoutMs,
      signal: opts.signal,
    });
    for (const r of results) {
      const reason = notReady.get(r.ref.name);
      if (reason && r.action !== 'failed') Object.assign(r, { action: 'failed', reason });
    }
  }
  // Scope comes from discovery, which now knows the kinds of the CRDs just applied.
  const scoped = await mapLimit(rest, limit, async (obj) => {
    try {
      return {
        obj,
        namespaced: (await kube.resource(obj.apiVersion, obj.kind, opts.signal)).namespaced,
      };
    } catch (err) {
      return { obj, error: errorMessage(err) };
    }
  });
  for (const s of scoped) if ('error' in s) results.push(entry(refOf(s.obj), 'failed', s.error));
  const ok: { obj: KubeObject; namespaced: boolean }[] = [];
  for (const s of scoped) {
    if ('error' in s) continue;
    const ref = refOf(prepareObject(s.obj, s.namespaced, opts));
    const refused = refusal(ref, s.namespaced, opts.namespaces);
    if (refused) results.push(entry(ref, 'failed', refused));
    else ok.push(s);
  }
  for (const group of groupByStage(ok, (s) => stageOf(s.obj, s.namespaced))) {
    if (opts.signal?.aborted) break;
    results.push(...(await mapLimit(group.items, limit, (s) => applyObject(kube, s.obj, opts))));
  }
  return results;
}
