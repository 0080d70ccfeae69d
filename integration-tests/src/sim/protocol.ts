// What the simulator's parent and its worker processes tell each other (Node IPC), and
// the records agents leave: the raw material of every benchmark figure. Times are wall
// clock ms (performance.timeOrigin + performance.now(), sub-ms), comparable across the
// processes of one machine; an agent's clock skew never touches them.
import type { SimConfig } from './config.js';

/** Something one simulated agent saw or did. */
export type SimRecord =
  /** The hub welcomed a session (a connect or a reconnect). */
  | { k: 'connected'; agent: string; at: number; clockSkewMs: number }
  /** A session ended; the agent will dial again. */
  | { k: 'disconnected'; agent: string; at: number; reason: string }
  /**
   * A desired state arrived, verified. `redundant`: its digest is what the agent had
   * already applied (the hub re-sent a state the agent has: the resync failure to count).
   */
  | {
      k: 'desired';
      agent: string;
      at: number;
      digest: string;
      revision: string;
      generation: number;
      redundant: boolean;
    }
  /** The hub said the applied state is current (at this revision). */
  | { k: 'up-to-date'; agent: string; at: number; digest: string; revision: string }
  /** An apply finished (simulated) and was acked, or a retry of a failed one succeeded (not acked). */
  | {
      k: 'applied';
      agent: string;
      at: number;
      digest: string;
      revision: string;
      result: 'applied' | 'failed';
      retry?: true;
    };

/** One worker's resource use and publishing counters, cumulative since it started. */
export interface WorkerStats {
  pid: number;
  agents: number;
  /** process.cpuUsage(), µs. */
  cpuUserUs: number;
  cpuSystemUs: number;
  rssBytes: number;
  /** Events stored in JetStream (acked), waiting, and dropped. */
  published: number;
  /** Of published, by event kind (the subject's last token: applied, drift-detected, ...). */
  publishedByKind: Record<string, number>;
  pending: number;
  dropped: number;
  /** Agents with an open, welcomed session now. */
  connected: number;
}

/** Parent → worker. */
export type ToWorker =
  | { t: 'start'; worker: number; config: SimConfig; agents: string[] }
  | { t: 'stats'; id: number }
  /** Every agent publishes `perAgent` events now (drift detected/corrected pairs), for ingest figures. */
  | { t: 'burst'; id: number; perAgent: number }
  | { t: 'stop'; id: number };

/** Worker → parent. */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'records'; records: SimRecord[] }
  | { t: 'reply'; id: number; stats?: WorkerStats; error?: string }
  | { t: 'fatal'; message: string };
