// The bundle's namespace as the agent should create it (spec.createNamespace, default true,
// with spec.namespaceLabels / namespaceAnnotations), or nothing: no namespace, opted out,
// or the bundle declares that Namespace itself (then the object is what is applied).
import type { BundleNamespace, KubeObject } from '@flotilla/common';
import type { BundleDef } from './spec.js';

/** The namespace the agent creates for this bundle on a cluster, or undefined. */
export function namespaceToCreate(
  def: Pick<BundleDef, 'createNamespace' | 'namespaceLabels' | 'namespaceAnnotations'>,
  namespace: string | undefined,
  objects: readonly KubeObject[],
): BundleNamespace | undefined {
  if (!def.createNamespace || namespace === undefined) return undefined;
  const declared = objects.some(
    (o) => o.kind === 'Namespace' && o.apiVersion === 'v1' && o.metadata.name === namespace,
  );
  if (declared) return undefined;
  const labels = { ...def.namespaceLabels };
  const annotations = { ...def.namespaceAnnotations };
  return {
    name: namespace,
    ...(Object.keys(labels).length > 0 ? { labels } : {}),
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
  };
}
