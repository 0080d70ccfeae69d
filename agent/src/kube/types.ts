// The small Kubernetes surface the agent needs. The apply engine, the inventory and the
// state store depend on this interface, not on the client class, so unit tests can use
// a fake and the engine can be reused with another client.
import type { KubeObject } from '@flotilla/common';

/** Identity of an object in a cluster. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  /** Empty or absent for cluster-scoped objects. */
  namespace?: string;
  name: string;
}

/** What discovery knows about one kind. */
export interface ResourceInfo {
  /** "" for the core group. */
  group: string;
  version: string;
  kind: string;
  /** Plural resource name used in URLs, e.g. "deployments". */
  plural: string;
  namespaced: boolean;
}

/** Options of a server-side apply. */
export interface ApplyRequestOptions {
  /** Take ownership of fields another manager owns (default false). */
  force?: boolean;
  /** Validate and compute the result without persisting it (default false). */
  dryRun?: boolean;
  signal?: AbortSignal;
}

/** Options of a list. */
export interface ListOptions {
  /** Namespace to list in; all namespaces when absent (namespaced kinds). */
  namespace?: string;
  /** A label selector, e.g. "flotilla.dev/bundle=web". */
  labelSelector?: string;
  signal?: AbortSignal;
}

/** The Kubernetes operations Flotilla uses. Errors are KubeApiError / KubeConnectionError / UnknownKindError. */
export interface KubeApi {
  /** Resolves a kind through discovery (cached; refreshed on a miss). */
  resource(apiVersion: string, kind: string, signal?: AbortSignal): Promise<ResourceInfo>;
  /** The live object, or undefined when it does not exist. */
  get(ref: ObjectRef, signal?: AbortSignal): Promise<KubeObject | undefined>;
  /** Server-side apply with Flotilla's field manager; returns the (would-be) result. */
  apply(obj: KubeObject, opts?: ApplyRequestOptions): Promise<KubeObject>;
  /** Deletes in the background; false when the object did not exist. */
  delete(ref: ObjectRef, signal?: AbortSignal): Promise<boolean>;
  /** Lists objects of a kind. */
  list(apiVersion: string, kind: string, opts?: ListOptions): Promise<KubeObject[]>;
  /**
   * Every namespaced kind the server lists. Optional: without it a namespace the agent
   * created is never pruned (it cannot tell that nothing else lives there).
   */
  namespacedKinds?(signal?: AbortSignal): Promise<{ apiVersion: string; kind: string }[]>;
}

/** The object's reference, from its own fields. */
export function refOf(obj: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): ObjectRef {
  const ref: ObjectRef = { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name };
  if (obj.metadata.namespace) ref.namespace = obj.metadata.namespace;
  return ref;
}

/** "Kind/namespace/name" (or "Kind/name"), for messages. */
export function describeRef(ref: ObjectRef): string {
  return ref.namespace ? `${ref.kind}/${ref.namespace}/${ref.name}` : `${ref.kind}/${ref.name}`;
}
