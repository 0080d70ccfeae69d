// Every tunable duration, in one place, in milliseconds. Config may override some of
// them; these are the defaults.

/** Named default durations (ms). */
export const durations = {
  /** Hub: how often a Git source is polled (default 30 s). */
  sourcePollInterval: 30_000,
  /** Hub: fraction of the poll interval added as random jitter (10 %). */
  sourcePollJitter: 0.1,
  /** Both: heartbeat on the agent stream when idle (10 s). */
  streamHeartbeat: 10_000,
  /** Both: gRPC keepalive ping interval (20 s). */
  grpcKeepaliveTime: 20_000,
  /**
   * Both: how long a keepalive ping may wait for its answer (30 s, the stream's own
   * heartbeat tolerance). grpc-js judges it with a timer, which runs before the socket
   * holding the answer is read: a loop held longer than this (a loaded hub, a starved
   * simulator) dropped every connection whose ping was out, though the peer had answered.
   */
  grpcKeepaliveTimeout: 30_000,
  /** Agent: reconnect backoff, first and longest delay (0.5 s .. 30 s). */
  reconnectInitial: 500,
  reconnectMax: 30_000,
  /**
   * Agent: how long a dialled hub may take to welcome the hello before the agent dials
   * again (2 min). A hub admitting a storm of thousands of agents welcomes late but does
   * welcome; dialling again would only add to its queue. gRPC keepalive still notices a
   * hub that is gone.
   */
  welcomeWait: 120_000,
  /**
   * Hub → agent: a hub shutting down on purpose asks its agents to dial again about this
   * often (jittered, half to whole) rather than backing off (1 s), for hubRestartRedialWindow
   * after the last time it said so (60 s); then the backoff above applies again.
   */
  hubRestartRedial: 1_000,
  hubRestartRedialWindow: 60_000,
  /** Agent: re-apply the last desired state this often, as a safety net for missed watches (5 min). */
  resyncInterval: 300_000,
  /** Agent: retry a failed apply after this delay, growing to 2 min. */
  applyRetryInitial: 2_000,
  applyRetryMax: 120_000,
  /** Hub: a cluster without heartbeats for this long is shown offline (45 s). */
  clusterOfflineAfter: 45_000,
  /** Agent: a burst of watch events for one object is checked for drift once, this long after the first (20 ms). */
  driftDebounce: 20,
  /** Agent: repeated heals of one object wait this long, doubling up to the max (100 ms .. 5 min). */
  healBackoffInitial: 100,
  healBackoffMax: 300_000,
  /** Agent: heals of one object are counted in this window; at DRIFT_DEFAULTS.fightThreshold it is a fight (60 s). */
  fightWindow: 60_000,
  /** Agent: bundle health changes are published this long after the first change, coalesced (200 ms). */
  healthDebounce: 200,
  /**
   * Hub: at start, the history replay (and the first fetch of a source served from its
   * saved rendering) waits until no agent session has started for this long (1 s), or
   * this long at most (15 s): agents reconnecting after a restart go first.
   */
  historyReplayQuiet: 1_000,
  historyReplayMaxDelay: 15_000,
  /** Both: time allowed for a clean shutdown before exiting anyway (10 s). */
  shutdownGrace: 10_000,
  /**
   * Hub: at shutdown, after every agent stream was ended with its status, how long the gRPC
   * server waits for its clients to close before closing their connections itself (1 s).
   */
  grpcShutdownDrain: 1_000,
  /** Agent: a Helm hook Job or Pod that has not finished after this long fails its bundle, like helm's --timeout (5 min). */
  hookTimeout: 300_000,
  /** Agent: how often a running Helm hook (or one being deleted) is looked at (1 s). */
  hookPoll: 1_000,
  /** Hub: longest run of `kustomize build` or `helm template` for one bundle (60 s). */
  renderToolTimeout: 60_000,
  /** Hub: a cluster shows as degraded this long after the hub last cut its input or could not save its status (1 h). */
  statusDegradedFor: 3_600_000,
  /** Hub: deadline of one request to a Helm chart repository or OCI registry, redirects included (60 s). */
  chartFetchTimeout: 60_000,
  /** Hub: Helm chart version ranges are resolved again this often at the same commit (5 min). */
  chartResolveInterval: 300_000,
  /** Hub: CPU time one run of `kustomize build` or `helm template` may use, all threads (30 s). */
  renderToolCpuTime: 30_000,
  /** Agent: how often the cluster's version and served API versions are read again (60 s). */
  capabilitiesPoll: 60_000,
  /** Agent: how long the first dial waits for the first capabilities reading (5 s). */
  capabilitiesFirstWait: 5_000,
  /**
   * Hub: a connecting agent whose capabilities the hub did not know gets its first desired
   * state from the re-render they cause, or after this long at most (10 s).
   */
  capabilitiesRenderWait: 10_000,
  /** Hub: how often the renderer (render.remote) is probed for the hub's degraded status (5 s). */
  rendererProbeInterval: 5_000,
  /** Hub: deadline of one probe of the renderer (3 s). */
  rendererProbeTimeout: 3_000,
  /** Hub: capability reports arriving within this window share one re-render (1 s). */
  capabilitiesRerenderDelay: 1_000,
  /** Hub: a failed write of reported capabilities to KV is retried after this delay (1 s). */
  capabilitiesSaveRetry: 1_000,
  /** Hub: retry a failed push of NATS account revocations after this delay (2 s). */
  natsClaimsRetry: 2_000,
  /** Hub: connect and request timeout of one push of NATS account revocations (3 s). */
  natsClaimsTimeout: 3_000,
  /** Hub: a cluster not healthy at a rollout's new revision this long after getting it has failed (10 min; spec.rollout.progressDeadline). */
  rolloutProgressDeadline: 600_000,
  /** Hub: status changes of clusters in a rollout are decided on together, this long after the first (50 ms). */
  rolloutDebounce: 50,
  /**
   * Hub: a rollout decision stops taking bundles once it has run this long; the rest are
   * decided in the next one, at once (2 ms: a tick stays short when a commit starts many,
   * with room for one bundle's slice and a garbage-collection pause within 10 ms).
   */
  rolloutDecisionBudget: 2,
  /** Hub: retry saving rollout state after a failed write, growing to the max (1 s .. 30 s). */
  rolloutSaveRetryInitial: 1_000,
  rolloutSaveRetryMax: 30_000,
  /** Hub: at start, how long to wait for rollout state in NATS before holding rollout bundles (10 s). */
  rolloutRestoreWindow: 10_000,
  /**
   * Hub replicas: the once-only work lease lives this long in NATS unless renewed (3 s);
   * the holder renews it every quarter and stops its work after three quarters without a
   * renewal; a follower looks for a free lease every leaseCheckInterval (250 ms).
   */
  hubLeaseTtl: 3_000,
  leaseCheckInterval: 250,
  /** Hub replicas: how often a replica not holding the lease reads rollout state again (1 s). */
  rolloutFollowInterval: 1_000,
  /** Hub replicas: how long a rollout action forwarded to the lease holder waits for its answer (5 s). */
  rolloutActionForwardTimeout: 5_000,
  /**
   * Hub replicas: a replica cut from NATS this long closes its agents' streams and refuses
   * new ones (readiness false), so agents move to replicas that can reach NATS (10 s).
   */
  natsPartitionGrace: 10_000,
  /**
   * Hub replicas: a replica cut from NATS asks its peers (over HTTP) this often whether one
   * of them reaches NATS, to send its agents there or take them back (5 s).
   */
  natsPeerRecheck: 5_000,
  /** Hub replicas: time allowed to one peer's /readyz answer (2 s). */
  peerProbeTimeout: 2_000,
} as const;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "250ms", "30s", "5m", "1h30m", "2d" (or a bare number of ms) into milliseconds. */
export function parseDuration(text: string | number): number {
  if (typeof text === 'number') {
    if (!Number.isFinite(text) || text < 0) throw new RangeError(`invalid duration ${text}`);
    return text;
  }
  const trimmed = text.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(trimmed); m; m = re.exec(trimmed)) {
    total += Number(m[1]) * (UNITS[m[2] as string] as number);
    matched = re.lastIndex;
  }
  if (trimmed.length === 0 || matched !== trimmed.length) {
    throw new RangeError(`invalid duration "${text}" (use e.g. 500ms, 30s, 5m, 1h)`);
  }
  return total;
}
