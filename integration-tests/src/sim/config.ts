// The fleet simulator's configuration in three stages: SimOptions (what a caller or the
// command line gives) → defaults → SimConfig (complete, validated once, durations in ms).
// SimConfig is plain data: it travels to the worker processes as it is.
import { ConfigError, durations, errorMessage, parseDuration } from '@flotilla/common';
import { parseDistribution } from './random.js';

/** How simulated agents prove who they are to the hub. */
export type SimAuth =
  /** --insecure hub: plaintext, the shared agent token (auth.tokenFile), or none. */
  | { kind: 'token'; token?: string }
  /**
   * TLS hub with per-cluster identities, as real agents: each agent gets a single-use
   * bootstrap token (AddCluster with the administrator certificate of adminDir, what
   * `flotilla cluster add` does), registers, and keeps its certificate and NATS
   * credentials in stateDir (the simulator's stand-in for the cluster's Secret), so a
   * second run with the same stateDir registers nobody again.
   */
  | { kind: 'bootstrap'; adminDir: string; stateDir: string };

/** What a caller may set; everything but hub, nats, agents and auth has a default. */
export interface SimOptions {
  /**
   * host:port of the hub's gRPC endpoint, or several (replicas of one hub) comma separated:
   * each agent gets the whole list, starting at a different entry (agent index modulo the
   * list), so a fleet spreads over the replicas and fails over as real agents do.
   */
  hub: string;
  /** NATS URL(s), comma separated. */
  nats: string;
  /** Number of simulated agents (clusters). */
  agents: number;
  auth: SimAuth;
  /** Child processes the agents are spread over (default 1). */
  processes?: number;
  /** Cluster names are `<prefix>-<5-digit index>` (default "sim"); see simClusterName. */
  prefix?: string;
  /** Index of the first agent (default 0), to run one fleet from several simulators. */
  firstIndex?: number;
  /** Apply duration per desired state (default "20ms"; see parseDistribution). */
  applyLatency?: string;
  /** Share of applies that fail (0..1, default 0). */
  failureRate?: number;
  /**
   * A failed apply is retried after this long and succeeds, as the agent's retry would:
   * published as `applied`, with no ack (default 0: never retried).
   */
  retryAfterMs?: number;
  /** Share of bundles reported Degraded after an apply (0..1, default 0). */
  unhealthyRate?: number;
  /** Drift detections per agent per minute (default 0); each is corrected after an apply latency. */
  driftPerMinute?: number;
  /** Disconnects per agent per minute (default 0); each agent comes back after churnDowntime. */
  churnPerMinute?: number;
  /** How long a churned agent stays away (default "1s..5s"). */
  churnDowntime?: string;
  /** Largest clock skew of an agent (default 0): each agent's clock (events, hello, heartbeats) is off by a fixed amount in ±this. */
  clockSkewMs?: number;
  /** Seed of every random choice (default 1). */
  seed?: number;
  /** Heartbeat interval assumed before the hub's welcome (default durations.streamHeartbeat). */
  heartbeatMs?: number;
  /** How often workers send their records to the parent (default 50 ms). */
  reportIntervalMs?: number;
  /** Directory for the workers' logs (default: a temporary directory). */
  logDir?: string;
  /** Worker log level (default "warn"). */
  logLevel?: string;
}

/** The compiled configuration: every field set and checked. */
export type SimConfig = Required<SimOptions>;

/** Defaults of the optional fields (logDir is chosen at start). */
export const SIM_DEFAULTS = {
  processes: 1,
  prefix: 'sim',
  firstIndex: 0,
  applyLatency: '20ms',
  failureRate: 0,
  retryAfterMs: 0,
  unhealthyRate: 0,
  driftPerMinute: 0,
  churnPerMinute: 0,
  churnDowntime: '1s..5s',
  clockSkewMs: 0,
  seed: 1,
  heartbeatMs: durations.streamHeartbeat,
  reportIntervalMs: 50,
  logLevel: 'warn',
} as const;

/** Name of the simulated cluster with this index: "sim-00042". */
export function simClusterName(index: number, prefix: string = SIM_DEFAULTS.prefix): string {
  return `${prefix}-${String(index).padStart(5, '0')}`;
}

function rate(value: number, field: string): number {
  if (!Number.isFinite(value) || value < 0 || value > 1)
    throw new ConfigError(field, `must be between 0 and 1, got ${value}`);
  return value;
}

function nonNegative(value: number, field: string): number {
  if (!Number.isFinite(value) || value < 0)
    throw new ConfigError(field, `must be a number ≥ 0, got ${value}`);
  return value;
}

function positiveInt(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 1)
    throw new ConfigError(field, `must be a whole number ≥ 1, got ${value}`);
  return value;
}

function distribution(text: string, field: string): string {
  try {
    return parseDistribution(text).text;
  } catch (err) {
    throw new ConfigError(field, errorMessage(err));
  }
}

/** Applies defaults and validates; a ConfigError names the field that is wrong. */
export function compileSimConfig(o: SimOptions, logDir: string): SimConfig {
  const hubs = o.hub.split(',').map((h) => h.trim());
  if (hubs.length > 16 || !hubs.every((h) => /^[^:,]+:\d{1,5}$/.test(h)))
    throw new ConfigError('hub', `"${o.hub}" is not HOST:PORT or up to 16 of them comma separated`);
  if (!o.nats) throw new ConfigError('nats', 'is required');
  const agents = positiveInt(o.agents, 'agents');
  const processes = positiveInt(o.processes ?? SIM_DEFAULTS.processes, 'processes');
  if (processes > agents)
    throw new ConfigError('processes', `${processes} processes for ${agents} agents`);
  const prefix = o.prefix ?? SIM_DEFAULTS.prefix;
  if (!/^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?$/.test(prefix))
    throw new ConfigError('prefix', `"${prefix}" cannot start a cluster name (DNS label)`);
  if (o.auth.kind === 'bootstrap' && (!o.auth.adminDir || !o.auth.stateDir))
    throw new ConfigError('auth', 'bootstrap needs adminDir and stateDir');
  return {
    hub: o.hub,
    nats: o.nats,
    agents,
    auth: o.auth,
    processes,
    prefix,
    firstIndex: Math.trunc(nonNegative(o.firstIndex ?? SIM_DEFAULTS.firstIndex, 'firstIndex')),
    applyLatency: distribution(o.applyLatency ?? SIM_DEFAULTS.applyLatency, 'applyLatency'),
    failureRate: rate(o.failureRate ?? SIM_DEFAULTS.failureRate, 'failureRate'),
    retryAfterMs: nonNegative(o.retryAfterMs ?? SIM_DEFAULTS.retryAfterMs, 'retryAfterMs'),
    unhealthyRate: rate(o.unhealthyRate ?? SIM_DEFAULTS.unhealthyRate, 'unhealthyRate'),
    driftPerMinute: nonNegative(o.driftPerMinute ?? SIM_DEFAULTS.driftPerMinute, 'driftPerMinute'),
    churnPerMinute: nonNegative(o.churnPerMinute ?? SIM_DEFAULTS.churnPerMinute, 'churnPerMinute'),
    churnDowntime: distribution(o.churnDowntime ?? SIM_DEFAULTS.churnDowntime, 'churnDowntime'),
    clockSkewMs: nonNegative(o.clockSkewMs ?? SIM_DEFAULTS.clockSkewMs, 'clockSkewMs'),
    seed: o.seed ?? SIM_DEFAULTS.seed,
    heartbeatMs: positiveInt(o.heartbeatMs ?? SIM_DEFAULTS.heartbeatMs, 'heartbeatMs'),
    reportIntervalMs: positiveInt(
      o.reportIntervalMs ?? SIM_DEFAULTS.reportIntervalMs,
      'reportIntervalMs',
    ),
    logDir: o.logDir ?? logDir,
    logLevel: o.logLevel ?? SIM_DEFAULTS.logLevel,
  };
}

/** Parses a duration flag, naming it when it is wrong. */
export function durationOption(text: string, field: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new ConfigError(field, errorMessage(err));
  }
}
