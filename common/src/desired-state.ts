// The desired state of one cluster: what the hub renders from one Git commit and the
// agent applies. Shared by both sides; its JSON form is what travels (gzip) on the stream.
import { canonicalJson, digestOf } from './hash.js';

/** A Kubernetes object as plain JSON. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

/** Fields of objects the agent ignores when comparing with the cluster. */
export interface DriftIgnoreRule {
  kind?: string;
  name?: string;
  namespace?: string;
  /** JSON pointers, e.g. "/spec/replicas". */
  paths: string[];
}

/** What the agent does about drift in a bundle's objects. */
export interface DriftPolicy {
  /** enforce: re-apply (default); warn: report only. */
  mode: 'enforce' | 'warn';
  ignore: DriftIgnoreRule[];
}

/** Helm hook phases Flotilla runs (docs/helm.md); others are left out of the desired state. */
export type HookPhase =
  'pre-install' | 'post-install' | 'pre-upgrade' | 'post-upgrade' | 'pre-delete';

/** What happens to a hook object (helm.sh/hook-delete-policy; default before-hook-creation). */
export type HookDeletePolicy = 'before-hook-creation' | 'hook-succeeded' | 'hook-failed';

/** A Helm hook: an object run at a phase of the bundle's apply, never applied as an ordinary object. */
export interface HookSpec {
  phases: HookPhase[];
  /** helm.sh/hook-weight (default 0): lower runs first. */
  weight: number;
  deletePolicies: HookDeletePolicy[];
  object: KubeObject;
}

/** The bundle's namespace, created by the agent when missing (bundle.yaml createNamespace, default true). */
export interface BundleNamespace {
  name: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** The chart a Helm bundle was rendered from, when it came from a repository or registry. */
export interface BundleChart {
  /** The chart repository URL, or the chart's OCI reference (oci://host/path/name). */
  repo: string;
  name: string;
  /** The version chosen (the newest matching the bundle's range, or the pinned one). */
  version: string;
  /** "sha256:<hex>" of the chart archive. */
  digest: string;
}

/** One bundle as rendered for one cluster. */
export interface BundleDesiredState {
  name: string;
  /** Digest of this bundle's content (objects and policy). */
  digest: string;
  drift: DriftPolicy;
  /** On a field-manager conflict: take ownership (force) or report it (default true). */
  forceConflicts: boolean;
  /** bundle.yaml `spec.allowMassPrune: true`: deleting many (or all) of its objects at once is not held (default absent: held). */
  allowMassPrune?: boolean;
  objects: KubeObject[];
  /** Helm hooks in run order (weight, kind, name); absent when none. */
  hooks?: HookSpec[];
  /** The namespace to create when missing; absent when the bundle has none, opts out, or declares it as an object. */
  namespace?: BundleNamespace;
  /** Bundles that must be applied and healthy at their current digest on the cluster first; absent when none. */
  dependsOn?: string[];
  /** The remote Helm chart it was rendered from (absent for other bundles): a new chart version is a new state. */
  chart?: BundleChart;
}

/** Mass-prune safety, from the hub's config and the cluster's file; the agent enforces it. */
export interface PrunePolicy {
  /**
   * Largest share (0 < maxShare ≤ 1) of a cluster's managed objects one desired state may
   * delete; a state that would delete more is held (default DEFAULT_MAX_PRUNE_SHARE, 0.5).
   */
  maxShare: number;
  /** clusters/<name>.yaml `spec.allowMassPrune: true`: nothing is held on this cluster (default absent). */
  allowMassPrune?: boolean;
}

/** Default of PrunePolicy.maxShare: a commit may delete at most half of a cluster's managed objects. */
export const DEFAULT_MAX_PRUNE_SHARE = 0.5;

/** Everything one cluster should run, rendered from one commit. */
export interface DesiredState {
  cluster: string;
  /** The Git commit it was rendered from. Not part of the digest: two commits that render the same content are the same state. */
  revision: string;
  /** Content digest over cluster and bundles ("sha256:<hex>"). */
  digest: string;
  bundles: BundleDesiredState[];
  /**
   * Bundles the hub could not render this time (paused, or failed at this commit) and
   * has no earlier rendering of to send: the agent must leave their objects alone, not
   * prune them. Absent or empty when every bundle rendered.
   */
  held?: string[];
  /** Mass-prune safety for this cluster; absent (older hubs) means DEFAULT_MAX_PRUNE_SHARE, no opt-in. */
  prune?: PrunePolicy;
}

/** Label put on every object Flotilla applies, naming its bundle. */
export const BUNDLE_LABEL = 'flotilla.dev/bundle';
/** Annotation that keeps an object in the cluster when it is pruned from Git. */
export const KEEP_ON_PRUNE_ANNOTATION = 'flotilla.dev/prune';
/** Helm's annotation that makes an object a hook (its value lists the phases). */
export const HELM_HOOK_ANNOTATION = 'helm.sh/hook';

/** Digest of a bundle's content. */
export function bundleDigest(b: Omit<BundleDesiredState, 'digest'>): string {
  return digestOf(
    canonicalJson({
      name: b.name,
      drift: b.drift,
      forceConflicts: b.forceConflicts,
      // Only when set, so digests of bundles without it are what they always were.
      ...(b.allowMassPrune === true ? { allowMassPrune: true } : {}),
      objects: b.objects,
      ...(b.hooks && b.hooks.length > 0 ? { hooks: b.hooks } : {}),
      ...(b.namespace ? { namespace: b.namespace } : {}),
      ...(b.dependsOn && b.dependsOn.length > 0 ? { dependsOn: b.dependsOn } : {}),
      ...(b.chart ? { chart: b.chart } : {}),
    }),
  );
}

/**
 * Digest of a cluster's desired state from its bundles' digests (bundles sorted by name),
 * the held bundles, if any, and the prune policy, if any (an opt-in must reach the agent
 * as a new state, so it is part of the content).
 */
export function desiredStateDigest(
  cluster: string,
  bundles: readonly { name: string; digest: string }[],
  held: readonly string[] = [],
  prune?: PrunePolicy,
): string {
  const parts = [...bundles]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((b) => [b.name, b.digest]);
  const value = {
    cluster,
    bundles: parts,
    ...(held.length > 0 ? { held: [...held].sort() } : {}),
    ...(prune ? { prune } : {}),
  };
  return digestOf(canonicalJson(value));
}

/** Identity of an object within a cluster: group/kind/namespace/name. */
export function objectKey(obj: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>): string {
  const slash = obj.apiVersion.indexOf('/');
  const group = slash < 0 ? '' : obj.apiVersion.slice(0, slash);
  return `${group}/${obj.kind}/${obj.metadata.namespace ?? ''}/${obj.metadata.name}`;
}
