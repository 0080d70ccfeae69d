// Builders of well-formed desired states for tests: digests computed the way the hub does.
import { bundleDigest, desiredStateDigest } from '@flotilla/common';
import type {
  BundleDesiredState,
  BundleNamespace,
  DesiredState,
  DriftPolicy,
  HookDeletePolicy,
  HookPhase,
  HookSpec,
  KubeObject,
} from '@flotilla/common';

/** A bundle as a test writes it: name, objects, optional conflict policy. */
export interface TestBundle {
  name: string;
  objects: KubeObject[];
  forceConflicts?: boolean;
  /** Default: enforce, nothing ignored. */
  drift?: DriftPolicy;
  hooks?: HookSpec[];
  namespace?: BundleNamespace;
  dependsOn?: string[];
}

/** A bundle with its digest. */
export function makeBundle(b: TestBundle): BundleDesiredState {
  const body = {
    name: b.name,
    drift: b.drift ?? { mode: 'enforce' as const, ignore: [] },
    forceConflicts: b.forceConflicts ?? true,
    objects: b.objects,
    ...(b.hooks ? { hooks: b.hooks } : {}),
    ...(b.namespace ? { namespace: b.namespace } : {}),
    ...(b.dependsOn ? { dependsOn: b.dependsOn } : {}),
  };
  return { ...body, digest: bundleDigest(body) };
}

/** A desired state with correct digests. */
export function makeState(cluster: string, revision: string, bundles: TestBundle[]): DesiredState {
  const built = bundles.map(makeBundle);
  return { cluster, revision, digest: desiredStateDigest(cluster, built), bundles: built };
}

/** A ConfigMap object. */
export function configMap(
  namespace: string,
  name: string,
  data: Record<string, string>,
  annotations?: Record<string, string>,
): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
    data,
  };
}

/** A Deployment without replicas (so an autoscaler may own them), one container. */
export function deployment(namespace: string, name: string, image = 'nginx:1.27'): KubeObject {
  const labels = { app: name };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace },
    spec: {
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: 'main', image }] } },
    },
  };
}

/** A Job that runs one container (a bare API server runs none: tests write its status). */
export function job(namespace: string, name: string, image = 'busybox:1.37'): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace },
    spec: {
      backoffLimit: 0,
      template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image }] } },
    },
  };
}

/** A hook as the hub renders it (weight 0, before-hook-creation unless given). */
export function hook(
  object: KubeObject,
  phases: HookPhase[],
  deletePolicies: HookDeletePolicy[] = ['before-hook-creation'],
  weight = 0,
): HookSpec {
  return { phases, weight, deletePolicies, object };
}
