// A bundle's namespace (bundle.yaml createNamespace, default true): created when missing,
// its labels and annotations applied (only those fields are ours), and pruned when the
// bundle no longer declares it, only if this bundle created it and nothing else lives
// there. "Nothing else": no object other than what Kubernetes puts in every namespace (the
// kube-root-ca.crt ConfigMap, the default ServiceAccount), Events, objects already being
// deleted, objects owned by namespaced owners (garbage-collected with them), Endpoints of
// a Service that is gone, and this bundle's own Helm hooks left behind.
import { BUNDLE_LABEL, HELM_HOOK_ANNOTATION, errorMessage } from '@flotilla/common';
import type { BundleNamespace, KubeObject } from '@flotilla/common';
import { applyObject } from '../apply/apply.js';
import { entry } from '../apply/changeset.js';
import type { ChangeSetEntry } from '../apply/changeset.js';
import type { ManagedNamespaces } from '../apply/scope.js';
import type { KubeApi, ObjectRef } from '../kube/types.js';
import { describeRef, refOf } from '../kube/types.js';

/** Annotation on a namespace the agent created for a bundle, naming the bundle. */
export const CREATED_BY_ANNOTATION = 'flotilla.dev/created-by-bundle';

const nsRef = (name: string): ObjectRef => ({ apiVersion: 'v1', kind: 'Namespace', name });

/** The outcome of ensureNamespace. */
export interface EnsuredNamespace {
  entry: ChangeSetEntry;
  /** This bundle created the namespace (now or before). */
  created: boolean;
}

/**
 * Creates the bundle's namespace when missing and applies its labels and annotations.
 * `createdBefore`: the inventory says this bundle created it. A namespaced-mode agent may
 * not touch Namespaces: it relies on the install having created its namespaces, and
 * refuses labels or annotations it cannot apply.
 */
export async function ensureNamespace(
  kube: KubeApi,
  ns: BundleNamespace,
  bundle: string,
  createdBefore: boolean,
  opts: { namespaces?: ManagedNamespaces; signal?: AbortSignal } = {},
): Promise<EnsuredNamespace> {
  const ref = nsRef(ns.name);
  if (opts.namespaces !== undefined) {
    if (!ns.labels && !ns.annotations) return { entry: entry(ref, 'unchanged'), created: false };
    const reason = `refused: namespaceLabels/namespaceAnnotations need a cluster-wide agent (this one runs in namespaced mode)`;
    return { entry: entry(ref, 'failed', reason), created: false };
  }
  try {
    const live = await kube.get(ref, opts.signal);
    const created = createdBefore || !live;
    if (live && !created && !ns.labels && !ns.annotations)
      return { entry: entry(ref, 'unchanged'), created: false };
    const obj: KubeObject = {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: ns.name,
        ...(ns.labels ? { labels: ns.labels } : {}),
        annotations: { ...ns.annotations, ...(created ? { [CREATED_BY_ANNOTATION]: bundle } : {}) },
      },
    };
    if (Object.keys(obj.metadata.annotations ?? {}).length === 0) delete obj.metadata.annotations;
    const e = await applyObject(kube, obj, { force: true, signal: opts.signal });
    return { entry: e, created: e.action === 'failed' ? createdBefore : created };
  } catch (err) {
    return { entry: entry(ref, 'failed', errorMessage(err)), created: createdBefore };
  }
}

/**
 * Deletes a namespace this bundle created if nothing else lives there; 'unchanged' with
 * the reason when it is kept.
 */
export async function pruneNamespace(
  kube: KubeApi,
  name: string,
  bundle: string,
  signal?: AbortSignal,
): Promise<ChangeSetEntry> {
  const ref = nsRef(name);
  try {
    const live = await kube.get(ref, signal);
    if (!live) return entry(ref, 'deleted', 'already gone');
    if (live.metadata.annotations?.[CREATED_BY_ANNOTATION] !== bundle)
      return entry(ref, 'unchanged', `kept: not annotated ${CREATED_BY_ANNOTATION}=${bundle}`);
    if (!kube.namespacedKinds) return entry(ref, 'unchanged', 'kept: cannot list what lives in it');
    const others = await occupants(kube, name, bundle, signal);
    if (others.length > 0) {
      const shown = others.slice(0, 3).join(', ');
      return entry(ref, 'unchanged', `kept: it holds other objects (${shown})`);
    }
    await kube.delete(ref, signal);
    return entry(ref, 'deleted');
  } catch (err) {
    return entry(ref, 'failed', errorMessage(err));
  }
}

// What lives in the namespace besides what every namespace has and what goes away by itself.
async function occupants(
  kube: KubeApi,
  namespace: string,
  bundle: string,
  signal?: AbortSignal,
): Promise<string[]> {
  const kinds = (await kube.namespacedKinds?.(signal)) ?? [];
  const found: string[] = [];
  const services = new Set<string>();
  const endpoints: KubeObject[] = [];
  for (const { apiVersion, kind } of kinds) {
    if (kind === 'Event') continue;
    let items: KubeObject[];
    try {
      items = await kube.list(apiVersion, kind, { namespace, signal });
    } catch (err) {
      found.push(`${kind}: cannot list (${errorMessage(err)})`);
      continue;
    }
    for (const o of items) {
      if (kind === 'Service' && apiVersion === 'v1') services.add(o.metadata.name);
      if (kind === 'Endpoints' && apiVersion === 'v1') {
        endpoints.push(o);
        continue;
      }
      if (!(await leavesWithNamespace(kube, o, bundle, signal))) found.push(describeRef(refOf(o)));
    }
  }
  // The endpoints controller removes the Endpoints of a Service that is gone.
  for (const e of endpoints)
    if (services.has(e.metadata.name) || !(await leavesWithNamespace(kube, e, bundle, signal)))
      found.push(describeRef(refOf(e)));
  return found;
}

async function leavesWithNamespace(
  kube: KubeApi,
  o: KubeObject,
  bundle: string,
  signal?: AbortSignal,
): Promise<boolean> {
  const { name, labels, annotations, deletionTimestamp, ownerReferences } = o.metadata;
  if (o.kind === 'ConfigMap' && name === 'kube-root-ca.crt') return true;
  if (o.kind === 'ServiceAccount' && name === 'default') return true;
  if (deletionTimestamp) return true;
  if (labels?.[BUNDLE_LABEL] === bundle && annotations?.[HELM_HOOK_ANNOTATION] !== undefined)
    return true;
  const owners = Array.isArray(ownerReferences)
    ? (ownerReferences as { apiVersion?: string; kind?: string }[])
    : [];
  if (owners.length === 0) return false;
  for (const owner of owners) {
    try {
      const info = await kube.resource(owner.apiVersion ?? '', owner.kind ?? '', signal);
      if (!info.namespaced) return false;
    } catch {
      return false;
    }
  }
  return true;
}
