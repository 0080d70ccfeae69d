// What the API serves, declared here so the API depends on small interfaces only.
import type { Selector } from '@flotilla/common';
import type { ClusterStatus } from '../status/model.js';

/** Read access to the fleet status (FleetStatus implements it). */
export interface StatusQuery {
  list(selector?: Selector): ClusterStatus[];
  get(name: string): ClusterStatus | undefined;
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
  /** Last fetch or render error, "" when the last attempt succeeded. */
  error: string;
}

/** Read access to source states. */
export interface SourcesQuery {
  sources(): SourceStatus[];
}

/** Whether the hub is ready to serve, and why not. */
export interface Readiness {
  check(): { ready: boolean; reasons: string[] };
}
