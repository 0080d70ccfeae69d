// Apply order: what others depend on goes first. CRDs before their custom resources,
// Namespaces before what lives in them, cluster-scoped objects (ClusterRoles, ...)
// before namespaced ones that reference them. Deletion runs in the reverse order.
import type { KubeObject } from '@flotilla/common';

/** Stages, in apply order. */
export type Stage = 'crds' | 'namespaces' | 'cluster' | 'namespaced';

/** Stage names in apply order. */
export const APPLY_ORDER: readonly Stage[] = ['crds', 'namespaces', 'cluster', 'namespaced'];
/** Stage names in delete order (reverse of apply). */
export const DELETE_ORDER: readonly Stage[] = [...APPLY_ORDER].reverse();

type Typed = Pick<KubeObject, 'apiVersion' | 'kind'>;

/** True for apiextensions.k8s.io CustomResourceDefinitions. */
export function isCrd(obj: Typed): boolean {
  return (
    obj.kind === 'CustomResourceDefinition' && obj.apiVersion.startsWith('apiextensions.k8s.io/')
  );
}

/** True for core Namespaces. */
export function isNamespace(obj: Typed): boolean {
  return obj.kind === 'Namespace' && obj.apiVersion === 'v1';
}

/** The stage of an object, given whether its kind is namespaced. */
export function stageOf(obj: Typed, namespaced: boolean): Stage {
  if (isCrd(obj)) return 'crds';
  if (isNamespace(obj)) return 'namespaces';
  return namespaced ? 'namespaced' : 'cluster';
}

/** Groups items by stage, in the given order; input order is kept within a stage, empty stages are left out. */
export function groupByStage<T>(
  items: readonly T[],
  stage: (item: T) => Stage,
  order: readonly Stage[] = APPLY_ORDER,
): { stage: Stage; items: T[] }[] {
  const groups = new Map<Stage, T[]>(order.map((s) => [s, []]));
  for (const item of items) groups.get(stage(item))?.push(item);
  return order
    .map((s) => ({ stage: s, items: groups.get(s) ?? [] }))
    .filter((g) => g.items.length > 0);
}
