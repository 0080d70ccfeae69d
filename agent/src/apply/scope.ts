// Namespaced mode: an agent installed with `flotilla cluster add --namespaces a,b` holds
// Roles in those namespaces only. It refuses what lies outside them itself, before any
// request to the API server, so each object fails with a reason a user can act on
// instead of the API server's "forbidden" (and nothing cluster-wide is ever attempted).
import type { ObjectRef } from '../kube/types.js';

/** Where the agent may apply: undefined = cluster-wide, else only in these namespaces. */
export type ManagedNamespaces = readonly string[] | undefined;

/**
 * Why the object may not be applied in namespaced mode, or undefined when it may (always
 * undefined cluster-wide). `ref.namespace` is the namespace it would be applied in.
 */
export function refusal(
  ref: Pick<ObjectRef, 'namespace'>,
  namespaced: boolean,
  namespaces: ManagedNamespaces,
): string | undefined {
  if (namespaces === undefined) return undefined;
  const list = namespaces.join(', ');
  if (!namespaced)
    return `refused: cluster-scoped object, and this agent runs in namespaced mode (it manages only namespace(s) ${list}); deploy it with a cluster-wide agent or remove it from the bundle`;
  if (!namespaces.includes(ref.namespace ?? ''))
    return `refused: namespace "${ref.namespace ?? ''}" is not one this agent manages (namespaced mode: ${list})`;
  return undefined;
}
