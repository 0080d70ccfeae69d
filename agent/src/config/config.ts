// Stages 2 and 3 of config: defaults, then one compiled, fully-required config validated
// once at start. A ConfigError names the field (the flag) that is wrong.
import {
  ConfigError,
  durations,
  errorMessage,
  isDnsLabel,
  natsTransport,
  parseDuration,
} from '@flotilla/common';
import type { AgentOptions } from './options.js';

/** Everything the agent runs with; durations in ms. */
export interface AgentConfig {
  cluster: string;
  /** host:port of the Prometheus /metrics endpoint; undefined = off. */
  metricsAddr: string | undefined;
  /** host:port of the hub, or several comma separated (replicas of one hub, tried in turn). */
  hubAddress: string;
  /** kubeconfig file; undefined means the default loading rules. */
  kubeconfigPath: string | undefined;
  natsServers: string;
  /** TLS to NATS (a tls:// server or a CA file); the server certificate is verified. */
  natsTls: boolean;
  /** CA bundle for the NATS server's certificate; undefined = the system roots. */
  natsCaFile: string | undefined;
  /** Directory of the event buffer file; undefined = events are buffered in memory only. */
  eventBufferDir: string | undefined;
  tokenFile: string | undefined;
  /** One-time bootstrap token file; undefined reads Secret flotilla-bootstrap. */
  bootstrapTokenFile: string | undefined;
  /** Token from the environment; tokenFile wins when both are set. */
  token: string | undefined;
  namespace: string;
  /** Namespaced mode: the only namespaces the agent applies into; undefined = cluster-wide. */
  managedNamespaces: string[] | undefined;
  insecure: boolean;
  caFile: string | undefined;
  logLevel: string;
  agentVersion: string;
  heartbeatMs: number;
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  resyncIntervalMs: number;
  applyRetryInitialMs: number;
  applyRetryMaxMs: number;
  shutdownGraceMs: number;
  /** Events held while NATS is unavailable. */
  eventBufferSize: number;
  /** Applies in flight per stage. */
  applyConcurrency: number;
  /** Time between readings of the cluster's capabilities (default 60 s). */
  capabilitiesIntervalMs: number;
}

/** Defaults for everything the user may leave out. */
export const AGENT_DEFAULTS = {
  namespace: 'flotilla-system',
  logLevel: 'info',
  heartbeatMs: durations.streamHeartbeat,
  keepaliveTimeMs: durations.grpcKeepaliveTime,
  keepaliveTimeoutMs: durations.grpcKeepaliveTimeout,
  reconnectInitialMs: durations.reconnectInitial,
  reconnectMaxMs: durations.reconnectMax,
  resyncIntervalMs: durations.resyncInterval,
  applyRetryInitialMs: durations.applyRetryInitial,
  applyRetryMaxMs: durations.applyRetryMax,
  shutdownGraceMs: durations.shutdownGrace,
  eventBufferSize: 10_000,
  applyConcurrency: 8,
  capabilitiesIntervalMs: durations.capabilitiesPoll,
} as const;

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

function required(value: string | undefined, field: string, env: string): string {
  if (!value) throw new ConfigError(field, `is required (flag --${field} or env ${env})`);
  return value;
}

function checkHub(list: string): string {
  const addresses = list
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (addresses.length === 0) throw new ConfigError('hub', 'names no HOST:PORT');
  for (const address of addresses) {
    const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
    const port = Number(m?.[2]);
    if (!m || port < 1 || port > 65_535)
      throw new ConfigError('hub', `"${address}" is not HOST:PORT`);
  }
  return addresses.join(',');
}

function checkNats(servers: string): string {
  for (const s of servers.split(',').map((x) => x.trim())) {
    let ok = false;
    try {
      ok = ['nats:', 'tls:', 'ws:', 'wss:'].includes(new URL(s).protocol);
    } catch {
      ok = /^[A-Za-z0-9.-]+:\d+$/.test(s);
    }
    if (!ok) throw new ConfigError('nats', `"${s}" is not a NATS URL (nats://host:port)`);
  }
  return servers;
}

/** Applies defaults and validates; throws ConfigError naming the field. */
export function compileConfig(opts: AgentOptions, agentVersion: string): AgentConfig {
  const cluster = required(opts.cluster, 'cluster', 'FLOTILLA_CLUSTER');
  if (!isDnsLabel(cluster))
    throw new ConfigError(
      'cluster',
      `"${cluster}" is not a DNS label (lower-case letters, digits, '-')`,
    );
  const namespace = opts.namespace ?? AGENT_DEFAULTS.namespace;
  if (!isDnsLabel(namespace))
    throw new ConfigError('namespace', `"${namespace}" is not a valid namespace name`);
  const managedNamespaces = checkManagedNamespaces(opts.managedNamespaces);
  const logLevel = opts.logLevel ?? AGENT_DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError('log-level', `"${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  if (opts.insecure && opts.bootstrapTokenFile)
    throw new ConfigError(
      'insecure',
      'cannot be combined with --bootstrap-token-file (registration needs TLS)',
    );
  if (opts.insecure && opts.caFile)
    throw new ConfigError('insecure', 'cannot be combined with --ca-file');
  const natsServers = checkNats(required(opts.nats, 'nats', 'FLOTILLA_NATS_URL'));
  const nats = natsTransport(
    natsServers,
    { caFile: opts.natsCaFile, allowPlaintext: opts.natsAllowPlaintext === true },
    { url: 'nats', caFile: '--nats-ca-file', allowPlaintext: '--nats-allow-plaintext' },
  );
  return {
    ...AGENT_DEFAULTS,
    cluster,
    hubAddress: checkHub(required(opts.hub, 'hub', 'FLOTILLA_HUB')),
    kubeconfigPath: opts.kubeconfig,
    natsServers,
    natsTls: nats.tls,
    natsCaFile: opts.natsCaFile,
    eventBufferDir: opts.eventBufferDir,
    tokenFile: opts.tokenFile,
    bootstrapTokenFile: opts.bootstrapTokenFile,
    token: opts.token,
    namespace,
    managedNamespaces,
    insecure: opts.insecure ?? false,
    caFile: opts.caFile,
    logLevel,
    agentVersion,
    metricsAddr: opts.metricsAddr === undefined ? undefined : checkMetricsAddr(opts.metricsAddr),
    capabilitiesIntervalMs:
      opts.capabilitiesInterval === undefined
        ? AGENT_DEFAULTS.capabilitiesIntervalMs
        : checkInterval(opts.capabilitiesInterval),
  };
}

function checkManagedNamespaces(list: string | undefined): string[] | undefined {
  if (list === undefined) return undefined;
  const names = [...new Set(list.split(',').map((n) => n.trim()))].filter((n) => n !== '');
  if (names.length === 0)
    throw new ConfigError('managed-namespaces', 'must name at least one namespace (a,b)');
  for (const n of names)
    if (!isDnsLabel(n))
      throw new ConfigError('managed-namespaces', `"${n}" is not a valid namespace name`);
  return names.sort();
}

function checkInterval(text: string): number {
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    throw new ConfigError('capabilities-interval', errorMessage(err));
  }
  // Each reading is a few requests to the API server; more often than 1 s is a mistake.
  if (ms < 1_000) throw new ConfigError('capabilities-interval', `"${text}" is shorter than 1s`);
  return ms;
}

function checkMetricsAddr(addr: string): string {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]*):(\d{1,5})$/.exec(addr);
  const port = Number(m?.[2]);
  if (!m || port > 65_535)
    throw new ConfigError('metrics-addr', `"${addr}" is not HOST:PORT (or :PORT)`);
  return addr;
}
