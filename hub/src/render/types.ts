// Shapes the renderer hands to the rest of the hub.
import type { ToolSandbox } from './sandbox.js';
import type { RemoteRendererSettings } from './remote/client.js';
import type { ClusterCapabilities, DesiredState } from '@flotilla/common';
import type { ChartSettings } from './charts/settings.js';

/** One problem found while rendering; message already starts with "file:line: " when known. */
export interface RenderError {
  bundle?: string;
  cluster?: string;
  file?: string;
  line?: number;
  message: string;
  /** For an object produced by two bundles: the other bundle (both are held on the cluster). */
  conflictsWith?: string;
}

/**
 * A bundle that did not get this revision's rendering on a cluster because of an error
 * (paused bundles are not failures), or, with bundle "", a cluster whose whole desired
 * state did not (broken cluster file, over the size limit).
 */
export interface RenderFailure {
  /** The bundle; "" for the cluster's whole desired state. */
  bundle: string;
  /** What went wrong, each "file:line: message" when known. */
  messages: string[];
  /** Revision of the rendering the cluster keeps getting instead; "" when it gets none. */
  servingRevision: string;
}

/** Counters of one render, for logs, tests and the benchmark. */
export interface RenderStats {
  /** (bundle, cluster-inputs) combinations rendered from scratch: cache misses. */
  bundleRenders: number;
  /** Combinations served from the content-addressed cache. */
  bundleCacheHits: number;
  /** bundle.yaml + manifest sets parsed (new input digests). */
  bundlesPrepared: number;
  /** Runs of kustomize or helm (cache misses of tool output). */
  toolRuns: number;
  /** SOPS-encrypted files decrypted (cache misses: new ciphertext). */
  decryptions: number;
  durationMs: number;
}

/** What one render produced. */
export interface RenderResult {
  revision: string;
  /**
   * Desired state per cluster. A paused cluster, or one over the size limit, carries
   * the state this renderer produced for it before (if any); it is absent otherwise.
   */
  clusters: Map<string, DesiredState>;
  errors: RenderError[];
  /**
   * Per cluster, bundles that are paused or failed there. Their objects must not be
   * pruned: the state carries the bundle's previous rendering when this renderer had
   * one, and leaves it out otherwise (e.g. right after a hub restart).
   */
  held: Map<string, string[]>;
  /** Labels of every cluster declared in the repo (paused ones included). */
  labels: Map<string, Record<string, string>>;
  /** Clusters whose spec.paused is true. */
  pausedClusters: string[];
  /** Clusters whose file could not be read; like paused, they keep their previous state. */
  brokenClusters: string[];
  /**
   * Per cluster, what failed to render there at this revision, sorted by bundle (absent
   * for clusters without failures). A bundle.yaml too broken to know its targets fails
   * on the clusters that had the bundle at the last render, or on every cluster when no
   * cluster had it (docs/fleet-repo.md).
   */
  failures: Map<string, RenderFailure[]>;
  /**
   * Rollout plan of every bundle whose bundle.yaml was read at this revision (strategy
   * undefined when it has none); a broken bundle has no entry, so its last plan holds.
   */
  rollouts: Map<string, RolloutPlan>;
  stats: RenderStats;
  /**
   * True when some bundle needs a chart from a repository or registry (resolved or
   * not): the hub renders the commit again every charts.resolveInterval to pick up new
   * versions in a range.
   */
  resolvesCharts?: boolean;
}

/** Options of the renderer. */
export interface RenderOptions {
  /** Largest desired state of one cluster, in bytes of JSON (default 16 MiB). */
  maxClusterBytes?: number;
  /** The kustomize program (default "kustomize" on PATH). */
  kustomizePath?: string;
  /** The helm program (default "helm" on PATH). */
  helmPath?: string;
  /** The sops program, for SOPS-encrypted files (default "sops" on PATH). */
  sopsPath?: string;
  /** File of age identities that decrypt SOPS-encrypted files (default none: such files fail their bundle). */
  sopsAgeKeyFile?: string;
  /** Where sopsAgeKeyFile was set, named in errors (default "render.sopsAgeKeyFile"). */
  sopsKeySetting?: string;
  /** Longest run of kustomize or helm for one bundle (default durations.renderToolTimeout). */
  toolTimeoutMs?: number;
  /** Mass-prune safety carried in every desired state: the largest share of a cluster's objects one commit may delete (default 0.5). */
  maxPruneShare?: number;
  /** Data segment limit of one kustomize or helm run, bytes (default DEFAULT_TOOL_MAX_MEMORY, 512 MiB). */
  toolMaxMemoryBytes?: number;
  /** CPU time limit of one kustomize or helm run (default durations.renderToolCpuTime). */
  toolMaxCpuMs?: number;
  /** YAML documents per bundle, empty ones included (default 10,000). */
  maxBundleDocuments?: number;
  /** Objects per bundle (default 5,000). */
  maxBundleObjects?: number;
  /** Objects per cluster, all bundles together (default 20,000). */
  maxClusterObjects?: number;
  /**
   * Helm capabilities of a cluster that neither reported nor declares its own (default
   * BUILTIN_CAPABILITIES: Kubernetes v1.35.0, no extra API versions).
   */
  defaultCapabilities?: ClusterCapabilities;
  /** Chart repositories and registries: access, cache, limits (default: no credentials, cache in the temp dir). */
  chartSettings?: ChartSettings;
  /** Where kustomize, helm and sops run (resolveSandbox at hub start; default NO_SANDBOX). */
  toolSandbox?: ToolSandbox;
  /** render.remote: kustomize and helm run on this renderer instead (default: locally). */
  remoteRenderer?: RemoteRendererSettings;
  /**
   * Where helm's output is kept by the digest of its inputs (kept-output.ts), so the same
   * inputs render to the same bytes in a new process; the hub uses `<cacheDir>/.helm-output`.
   * Default none: every new renderer runs helm again.
   */
  helmOutputDir?: string;
}

/**
 * Per-render inputs besides the tree. Plain data only (maps, arrays, strings): a render
 * may run in another thread.
 */
export interface RenderInputs {
  /**
   * Capabilities each cluster's agent reported; clusters with equal capabilities should
   * share one object. A cluster without an entry renders with its Cluster's
   * spec.kubeVersion / spec.apiVersions, else RenderOptions.defaultCapabilities.
   */
  capabilities?: ReadonlyMap<string, ClusterCapabilities>;
  /**
   * Render only these clusters (the others are left out of the result), and run
   * kustomize and helm only for bundles they get: for one-off renders such as
   * `flotilla render --cluster`. Default: every cluster.
   */
  clusters?: readonly string[];
  /**
   * Resolve chart version ranges again, though the revision is the one rendered last
   * (the hub's charts.resolveInterval). A new revision always resolves again; other
   * renders of the same revision reuse the last resolution. Default false.
   */
  refreshCharts?: boolean;
}

/** Default of RenderOptions.maxClusterBytes: 16 MiB. */
export const DEFAULT_MAX_CLUSTER_BYTES = 16 * 1024 * 1024;

/** A stage limit: a number of clusters, or a share of the stage's clusters. */
export type Amount = { count: number } | { percent: number };

/** A UTC time window in which a stage may start updating clusters. */
export interface TimeWindow {
  /** Days of the week, 0 = Sunday … 6 = Saturday. */
  days: number[];
  /** Minutes after midnight UTC the window opens (inclusive) and closes (exclusive). */
  startMinute: number;
  endMinute: number;
}

/** One stage of a rollout strategy, as the controller runs it. */
export interface StagePolicy {
  name: string;
  /** Clusters updating at once (default 100 %: every cluster of the stage). */
  maxConcurrent: Amount;
  /** Clusters that may fail before the rollout stops (default 0). */
  maxFailures: Amount;
  /** How long every cluster of the stage must stay healthy before the next stage starts (default 0). */
  soakMs: number;
  /** The stage waits for `flotilla rollout approve` before it updates anyone (default false). */
  approval: boolean;
  /** When set, clusters are only started inside one of these windows. */
  windows: TimeWindow[];
  /** The stage of targeted clusters no declared stage selects. */
  implicit?: boolean;
}

/** A bundle's spec.rollout, compiled. */
export interface RolloutStrategy {
  stages: StagePolicy[];
  /** A cluster not healthy at the new revision this long after it got it counts as failed (default 10 min). */
  progressDeadlineMs: number;
  /** What a failed stage does: stop where it is, or put back what was healthy (default halt). */
  onFailure: 'halt' | 'rollback';
}

/** A bundle's rollout strategy and which stage each targeted cluster is in. */
export interface RolloutPlan {
  bundle: string;
  /** The strategy; undefined when the bundle has no spec.rollout (it is deployed at once). */
  strategy: RolloutStrategy | undefined;
  /** Targeted cluster → index of its stage in strategy.stages. */
  stageOf: Map<string, number>;
  /** Targeted clusters whose spec.paused is true. */
  paused: string[];
}
