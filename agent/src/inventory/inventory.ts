// Per-bundle inventory: what Flotilla applied, so it can prune what a bundle no longer
// declares and never touch anything else. Format (an invariant, see agent/README.md):
// ConfigMap flotilla-inventory-<bundle> in the agent namespace, label
// flotilla.dev/inventory=<bundle>, data.entries = JSON array of
// {apiVersion, kind, namespace?, name} sorted by key, data.digest / data.revision; and,
// only when there is something to say, data.hooks (the Helm hook run, JSON), data.namespace
// (the bundle's namespace and whether this bundle created it, JSON) and data.deleteHooks
// (digest of the pre-delete hooks kept in Secret flotilla-hooks-<bundle>).
import type { KubeObject } from '@flotilla/common';
import type { KubeApi, ObjectRef } from '../kube/types.js';
import { refOf } from '../kube/types.js';
import { hasStatus } from '../kube/errors.js';

/** Name prefix of inventory ConfigMaps. */
export const INVENTORY_PREFIX = 'flotilla-inventory-';
/** Label on an inventory ConfigMap naming its bundle. */
export const INVENTORY_LABEL = 'flotilla.dev/inventory';

/** Progress of a bundle's Helm hooks for one operation (agent/src/hooks/run.ts). */
export interface HookRun {
  /** Bundle digest the run is for ("" for a removal): a new digest starts a new run. */
  digest: string;
  /** install: the bundle had no inventory on this cluster; upgrade: it had; delete: it is being removed. */
  mode: 'install' | 'upgrade' | 'delete';
  /** Hooks finished in this run, "<phase>|<group/kind/namespace/name>". */
  done: string[];
  /** The hook started and not finished yet, and when it was started (ms since epoch). */
  running?: { hook: string; sinceMs: number };
  /** A hook failed (its reason): the run stops here until the bundle changes. */
  failed?: string;
}

/** The bundle's namespace as the agent handled it. */
export interface NamespaceRecord {
  name: string;
  /** This bundle created it: it may prune it when it is left empty. */
  created: boolean;
}

/** What Flotilla applied for one bundle. */
export interface Inventory {
  bundle: string;
  /** Digest of the bundle content last applied. */
  digest: string;
  revision: string;
  entries: ObjectRef[];
  /** Helm hook progress; absent for bundles without hooks. */
  hooks?: HookRun;
  /** The bundle's namespace (createNamespace); absent when none. */
  namespace?: NamespaceRecord;
  /** Digest of the pre-delete hooks stored for the bundle's removal; absent when none. */
  deleteHooks?: string;
}

function parseJson<T>(text: string | undefined): T | undefined {
  if (!text) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Identity of a ref regardless of API version: group/kind/namespace/name. */
export function refKey(ref: ObjectRef): string {
  const slash = ref.apiVersion.indexOf('/');
  const group = slash < 0 ? '' : ref.apiVersion.slice(0, slash);
  return `${group}/${ref.kind}/${ref.namespace ?? ''}/${ref.name}`;
}

/** Refs of `previous` not present in `current` (by group/kind/namespace/name). */
export function staleRefs(
  previous: readonly ObjectRef[],
  current: readonly ObjectRef[],
): ObjectRef[] {
  const keep = new Set(current.map(refKey));
  return previous.filter((r) => !keep.has(refKey(r)));
}

/** De-duplicated and sorted by key, so the stored form is stable. */
export function normalizeRefs(refs: readonly ObjectRef[]): ObjectRef[] {
  const byKey = new Map<string, ObjectRef>();
  for (const r of refs) {
    const clean: ObjectRef = { apiVersion: r.apiVersion, kind: r.kind, name: r.name };
    if (r.namespace) clean.namespace = r.namespace;
    byKey.set(refKey(clean), clean);
  }
  return [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
}

/** The ConfigMap that stores an inventory. */
export function inventoryObject(namespace: string, inv: Inventory): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `${INVENTORY_PREFIX}${inv.bundle}`,
      namespace,
      labels: { [INVENTORY_LABEL]: inv.bundle, 'app.kubernetes.io/managed-by': 'flotilla' },
    },
    data: {
      entries: JSON.stringify(normalizeRefs(inv.entries)),
      digest: inv.digest,
      revision: inv.revision,
      ...(inv.hooks ? { hooks: JSON.stringify(inv.hooks) } : {}),
      ...(inv.namespace ? { namespace: JSON.stringify(inv.namespace) } : {}),
      ...(inv.deleteHooks ? { deleteHooks: inv.deleteHooks } : {}),
    },
  };
}

/** Reads an inventory back from its ConfigMap. */
export function parseInventory(cm: KubeObject): Inventory | undefined {
  const bundle = cm.metadata.labels?.[INVENTORY_LABEL];
  const data = (cm.data ?? {}) as Record<string, string>;
  if (!bundle) return undefined;
  const parsed: unknown = JSON.parse(data.entries ?? '[]');
  const entries = Array.isArray(parsed)
    ? (parsed as ObjectRef[]).filter((r) => r && r.apiVersion && r.kind && r.name)
    : [];
  const hooks = parseJson<HookRun>(data.hooks);
  const namespace = parseJson<NamespaceRecord>(data.namespace);
  return {
    bundle,
    digest: data.digest ?? '',
    revision: data.revision ?? '',
    entries,
    ...(hooks && Array.isArray(hooks.done) ? { hooks } : {}),
    ...(namespace && typeof namespace.name === 'string' ? { namespace } : {}),
    ...(data.deleteHooks ? { deleteHooks: data.deleteHooks } : {}),
  };
}

/** Reads and writes inventories in one namespace. */
export class InventoryStore {
  constructor(
    private readonly kube: KubeApi,
    /** The agent namespace (default flotilla-system). */
    readonly namespace: string,
    /** Create the namespace when missing (default true). A namespaced-mode agent may not read Namespaces: its install creates it. */
    private readonly createNamespace = true,
  ) {}

  /** Creates the agent namespace if missing (nothing when createNamespace is false). */
  async ensureNamespace(signal?: AbortSignal): Promise<void> {
    if (this.createNamespace) await ensureNamespace(this.kube, this.namespace, signal);
  }

  /** Every stored inventory, by bundle. */
  async list(signal?: AbortSignal): Promise<Map<string, Inventory>> {
    const items = await this.kube.list('v1', 'ConfigMap', {
      namespace: this.namespace,
      labelSelector: INVENTORY_LABEL,
      signal,
    });
    const out = new Map<string, Inventory>();
    for (const cm of items) {
      const inv = parseInventory(cm);
      if (inv) out.set(inv.bundle, inv);
    }
    return out;
  }

  /** Stores (replaces) a bundle's inventory. */
  async write(inv: Inventory, signal?: AbortSignal): Promise<void> {
    await this.kube.apply(inventoryObject(this.namespace, inv), { force: true, signal });
  }

  /** Removes a bundle's inventory. */
  async remove(bundle: string, signal?: AbortSignal): Promise<void> {
    await this.kube.delete(
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace: this.namespace,
        name: `${INVENTORY_PREFIX}${bundle}`,
      },
      signal,
    );
  }
}

/** Creates a Namespace if it does not exist (never modifies an existing one). */
export async function ensureNamespace(
  kube: KubeApi,
  name: string,
  signal?: AbortSignal,
): Promise<void> {
  const ns: KubeObject = { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
  if (await kube.get(refOf(ns), signal)) return;
  try {
    await kube.apply(ns, { signal });
  } catch (err) {
    if (!hasStatus(err, 409)) throw err;
  }
}
