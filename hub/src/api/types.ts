// What the API serves, declared here so the API depends on small interfaces only.
import type { ClusterCapabilities, Selector } from '@flotilla/common';
import type { HistoryEntry, HistoryQuery } from '../history/history-log.js';
import type { JsonBytes } from '../status/cluster-json.js';
import type { BundleDeployment, BundleSummary } from '../status/deployments.js';
import type { ClusterFilter, DeploymentFilter, StatusListener } from '../status/fleet-status.js';
import type { ClusterStatus } from '../status/model.js';
import type { RolloutAction } from '../rollout/machine.js';
import type { RolloutSummary, RolloutView } from '../rollout/view.js';

/** Read access to the fleet status (FleetStatus implements it). */
export interface StatusQuery {
  list(filter?: Selector | ClusterFilter): ClusterStatus[];
  /** list(filter), each cluster as its JSON in UTF-8 bytes (not to be changed). */
  listBytes(filter?: Selector | ClusterFilter): JsonBytes[];
  get(name: string): ClusterStatus | undefined;
  /** get(name) as its JSON in UTF-8 bytes (cached until the cluster changes); absent: serialize get(name). */
  clusterBytes?(name: string): JsonBytes | undefined;
  describe(name: string): { cluster: ClusterStatus; deployments: BundleDeployment[] } | undefined;
  deployments(filter?: DeploymentFilter): BundleDeployment[];
  /** deployments(filter), each as its JSON in UTF-8 bytes (not to be changed). */
  deploymentsBytes(filter?: DeploymentFilter): JsonBytes[];
  bundleSummaries(): BundleSummary[];
  onChange(listener: StatusListener): () => void;
}

/** Read access to the event log (HistoryLog implements it). */
export interface HistoryReader {
  query(q: HistoryQuery): HistoryEntry[];
}

/** The Prometheus text of the hub's metrics (HubMetrics implements it). */
export interface MetricsText {
  render(): string;
}

/** State of one Git source as the hub last saw it. */
export interface SourceStatus {
  name: string;
  url: string;
  branch: string;
  /** Commit of the last successful fetch ("" before the first). */
  revision: string;
  /** ISO time of the last successful fetch, or null. */
  lastFetched: string | null;
  /** Commit whose rendering is being served ("" before the first render). */
  renderedRevision: string;
  /** ISO time the served rendering was saved, when it was read from the hub's disk at start and no render has replaced it yet. */
  restoredFrom?: string;
  /** Last fetch or render error, "" when the last attempt succeeded. */
  error: string;
  /**
   * The last fetch error, or a render that failed as a whole; "" when there is none
   * (the errors of single bundles are in renderErrors). Absent from older hubs.
   */
  lastError?: string;
  /** What the source follows and what it resolved to, e.g. "tag v1.3.5 (semver ^1.2.0)". */
  ref?: string;
  /** Stable code of the last fetch error (UNAUTHENTICATED, NOT_FOUND, UNAVAILABLE, VALIDATION_FAILED). */
  errorCode?: string;
  /** ISO time of the last fetch error. */
  errorAt?: string;
  /** Commit refused by signature verification, while the source's ref still names it. */
  rejectedRevision?: string;
  /** Render errors of the rendered revision, grouped by bundle and message (at most 100). */
  renderErrors?: SourceRenderError[];
  /** How many groups of render errors there are in all. */
  renderErrorCount?: number;
  /** Helm charts from repositories and registries the rendered revision uses (absent when none). */
  charts?: SourceChart[];
}

/** A remote Helm chart a bundle is rendered from, at the version resolved for the rendered revision. */
export interface SourceChart {
  bundle: string;
  /** The chart repository URL, or the chart's oci:// reference. */
  repo: string;
  /** The chart's name. */
  name: string;
  /** The version the bundle's range (or pin) resolved to. */
  version: string;
  /** "sha256:<hex>" of the chart archive. */
  digest: string;
  /** How many clusters get the bundle rendered from it. */
  clusters: number;
}

/** One render error of a source's revision and the clusters it keeps from that revision. */
export interface SourceRenderError {
  /** The bundle; "" for a cluster's whole desired state or a fleet-wide file. */
  bundle: string;
  /** The clusters, sorted (at most 100 named). */
  clusters: string[];
  /** How many clusters in all (0 when it keeps no cluster from the revision). */
  clusterCount: number;
  /** "file:line: message" when known. */
  message: string;
}

/** Read access to source states. */
export interface SourcesQuery {
  sources(): SourceStatus[];
}

/** What each cluster renders Helm charts with (the capabilities store and render config implement it). */
export interface CapabilitiesQuery {
  /** What the cluster's agent reported, with when (ISO time); undefined when nothing was. */
  reported(cluster: string): (ClusterCapabilities & { reportedAt: string }) | undefined;
  /** The hub's render.defaultKubeVersion / render.defaultApiVersions. */
  defaults(): ClusterCapabilities;
}

/** Something the hub depends on is failing, while the hub keeps serving (GET /api/v1/hub). */
export interface Degradation {
  /**
   * git: a source cannot be fetched; rendering: a saved rendering is served until a render
   * finishes; nats: NATS is not connected; renderer: the renderer (render.remote) is
   * unreachable; history: the history is being rebuilt at start.
   */
  reason: 'git' | 'rendering' | 'nats' | 'renderer' | 'history';
  /** The source, for git and rendering. */
  source?: string;
  /** ISO time it started. */
  since: string;
  /** What is degraded and what is served meanwhile, for people. */
  message: string;
}

/** Whether the hub is ready to serve agents and reads, and why not; what is degraded meanwhile. */
export interface Readiness {
  check(): { ready: boolean; reasons: string[]; degraded?: Degradation[] };
}

/** Rollouts: read them, and act on them (RolloutController implements it). */
export interface RolloutsApi {
  list(): RolloutSummary[];
  get(bundle: string): RolloutView | undefined;
  /**
   * Applies an action as `by`; with `revision`, only to a rollout of that commit (prefix).
   * Rejects with NOT_FOUND (no rollout) or CONFLICT (its phase refuses the action).
   */
  act(bundle: string, action: RolloutAction, by: string, revision?: string): Promise<RolloutView>;
}
