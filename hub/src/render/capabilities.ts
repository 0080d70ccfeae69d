// Which capabilities a cluster's Helm bundles are rendered with. A cluster's agent reports
// them (RenderInputs.capabilities); until it has, the Cluster's spec.kubeVersion /
// spec.apiVersions in Git, else the hub's render.defaultKubeVersion /
// render.defaultApiVersions, else the built-in default below. Field by field: a report
// without a version keeps the fallback's version.
import { capabilitiesDigest } from '@flotilla/common';
import type { ClusterCapabilities } from '@flotilla/common';

/** Kubernetes version of a cluster nothing is known about (v1.35.0: the release Flotilla is tested on). */
export const DEFAULT_KUBE_VERSION = 'v1.35.0';

/** The built-in default: DEFAULT_KUBE_VERSION, no API versions beyond the ones helm always assumes. */
export const BUILTIN_CAPABILITIES: ClusterCapabilities = Object.freeze({
  kubeVersion: DEFAULT_KUBE_VERSION,
  apiVersions: Object.freeze([]) as readonly string[],
});

/** What a Cluster file declares (either field may be absent). */
export interface DeclaredCapabilities {
  kubeVersion?: string | undefined;
  apiVersions?: readonly string[] | undefined;
}

/**
 * The capabilities a cluster renders with: reported ones win, field by field over the
 * cluster's declared ones, over the hub's defaults. Returns one of the given objects
 * when nothing is combined, so equal inputs stay one object (cheap to key on).
 */
export function effectiveCapabilities(
  reported: ClusterCapabilities | undefined,
  declared: DeclaredCapabilities | undefined,
  defaults: ClusterCapabilities,
): ClusterCapabilities {
  if (reported && reported.kubeVersion !== '') return reported;
  const kubeVersion = declared?.kubeVersion ?? defaults.kubeVersion;
  const apiVersions = reported?.apiVersions ?? declared?.apiVersions ?? defaults.apiVersions;
  if (kubeVersion === defaults.kubeVersion && apiVersions === defaults.apiVersions) return defaults;
  return { kubeVersion, apiVersions };
}

// Digests per capabilities object: clusters with equal capabilities share one object
// (the hub interns them), so a render hashes each distinct set once.
const digests = new WeakMap<ClusterCapabilities, string>();

/** capabilitiesDigest, computed once per object. */
export function digestOfCapabilities(c: ClusterCapabilities): string {
  let d = digests.get(c);
  if (d === undefined) {
    d = capabilitiesDigest(c);
    digests.set(c, d);
  }
  return d;
}
