// One simulated agent: the agent's real HubConnection (hello, welcome, chunks, digest
// verification, acks, heartbeats, reconnect backoff) and its real EventPublisher to NATS
// JetStream, with the Kubernetes side replaced by a model: an apply takes a sampled
// latency and fails, or leaves bundles unhealthy, at the configured rates; drift is
// detected and corrected at a configured rate; the connection is dropped and redialled
// at a configured churn rate; event times carry a fixed clock skew.
import { performance } from 'node:perf_hooks';
import type { ChannelCredentials } from '@grpc/grpc-js';
import { AGENT_DEFAULTS, EventPublisher, HubConnection, LatestWinsQueue } from '@flotilla/agent';
import type { AckInput, EventSink, ReceivedState } from '@flotilla/agent';
import { sleep } from '@flotilla/common';
import type {
  AppliedData,
  BundleDesiredState,
  BundleHealthState,
  DesiredState,
  DriftCorrectedData,
  DriftDetectedData,
  HealthChangedData,
  KubeObject,
  Logger,
} from '@flotilla/common';
import type { SimConfig } from './config.js';
import type { SimRecord } from './protocol.js';
import { parseDistribution, poissonDelayMs } from './random.js';
import type { Distribution, Rng } from './random.js';

/** Agent version the simulated agents announce in their hello. */
export const SIM_AGENT_VERSION = 'flotilla-sim';

/**
 * Events a simulated agent holds while NATS is away (1,000; the agent's default is 10,000):
 * the buffer is allocated whole, and 10,000 agents × 10,000 slots would be the simulator's
 * largest memory cost.
 */
export const SIM_EVENT_BUFFER = 1_000;

/** Wall-clock ms with sub-ms precision: the time base of every record. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * The hub list an agent dials: `hub` (comma separated) rotated to start at the entry of the
 * agent's index (the number its name ends with), so a fleet given several replicas spreads
 * over them; one address is returned as it is.
 */
export function hubListFor(hub: string, name: string): string {
  const list = hub.split(',').map((h) => h.trim());
  if (list.length < 2) return hub;
  const index = Number(/(\d+)$/.exec(name)?.[1] ?? 0) % list.length;
  return [...list.slice(index), ...list.slice(0, index)].join(',');
}

/** What a simulated agent is given. */
export interface SimAgentDeps {
  sink: EventSink;
  rng: Rng;
  logger: Logger;
  record: (r: SimRecord) => void;
  /** mTLS credentials (bootstrap mode); the token is used otherwise. */
  credentials?: ChannelCredentials | undefined;
}

const refOf = (o: KubeObject) => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  ...(o.metadata.namespace ? { namespace: o.metadata.namespace } : {}),
  name: o.metadata.name,
});

/** A simulated agent; start() once, stop() once. */
export class SimAgent {
  readonly publisher: EventPublisher;
  private connection: HubConnection | undefined;
  private applied = { digest: '', revision: '' };
  private current: DesiredState | undefined;
  private readonly health = new Map<string, BundleHealthState>();
  private readonly queue: LatestWinsQueue<ReceivedState>;
  private readonly stopping = new AbortController();
  private readonly latency: Distribution;
  private readonly downtime: Distribution;
  private readonly skewMs: number;
  private churning: Promise<void> | undefined;
  private latest: ReceivedState | undefined;
  private connected = false;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    readonly name: string,
    private readonly cfg: SimConfig,
    private readonly deps: SimAgentDeps,
  ) {
    this.latency = parseDistribution(cfg.applyLatency);
    this.downtime = parseDistribution(cfg.churnDowntime);
    this.skewMs = (deps.rng() * 2 - 1) * cfg.clockSkewMs;
    this.publisher = new EventPublisher(deps.sink, {
      cluster: name,
      logger: deps.logger,
      bufferSize: SIM_EVENT_BUFFER,
      now: () => new Date(Date.now() + this.skewMs),
    });
    this.queue = new LatestWinsQueue((r, signal) => this.apply(r, signal), deps.logger);
  }

  /** How far this agent's clock is off (ms, + ahead of the real time). */
  get clockSkewMs(): number {
    return this.skewMs;
  }

  /** True while a session is welcomed. */
  get isConnected(): boolean {
    return this.connected;
  }

  /** Dials the hub and starts the drift and churn clocks. */
  start(): void {
    this.dial();
    this.every(this.cfg.driftPerMinute, () => this.drift());
    this.every(this.cfg.churnPerMinute, () => {
      this.churning ??= this.churn().finally(() => (this.churning = undefined));
    });
  }

  private dial(): void {
    const cfg = this.cfg;
    const token = cfg.auth.kind === 'token' ? cfg.auth.token : undefined;
    const conn = new HubConnection(
      {
        cluster: this.name,
        address: hubListFor(cfg.hub, this.name),
        agentVersion: SIM_AGENT_VERSION,
        ...(token ? { token } : {}),
        insecure: cfg.auth.kind === 'token',
        ...(this.deps.credentials ? { credentials: this.deps.credentials } : {}),
        keepaliveTimeMs: AGENT_DEFAULTS.keepaliveTimeMs,
        keepaliveTimeoutMs: AGENT_DEFAULTS.keepaliveTimeoutMs,
        reconnectInitialMs: AGENT_DEFAULTS.reconnectInitialMs,
        reconnectMaxMs: AGENT_DEFAULTS.reconnectMaxMs,
        heartbeatMs: cfg.heartbeatMs,
        logger: this.deps.logger,
        clock: () => Date.now() + this.skewMs,
        // Each agent its own TCP connection, as separate pods would have.
        channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
      },
      {
        appliedMark: () => this.applied,
        onDesired: (r) => this.onDesired(r),
        onUpToDate: (digest, revision) => this.onUpToDate(digest, revision),
      },
    );
    conn.machine.onChange((s) => {
      if (s === 'connected') {
        this.connected = true;
        this.deps.record({
          k: 'connected',
          agent: this.name,
          at: nowMs(),
          clockSkewMs: this.skewMs,
        });
      } else if (this.connected) {
        this.connected = false;
        this.deps.record({ k: 'disconnected', agent: this.name, at: nowMs(), reason: s });
      }
    });
    this.connection = conn;
    conn.start();
  }

  private onDesired(r: ReceivedState): void {
    this.deps.record({
      k: 'desired',
      agent: this.name,
      at: nowMs(),
      digest: r.state.digest,
      revision: r.state.revision,
      generation: r.generation,
      redundant: r.state.digest === this.applied.digest,
    });
    this.queue.submit(r);
  }

  private onUpToDate(digest: string, revision: string): void {
    this.deps.record({ k: 'up-to-date', agent: this.name, at: nowMs(), digest, revision });
    if (digest === this.applied.digest) this.applied = { digest, revision };
  }

  private async apply(r: ReceivedState, signal: AbortSignal): Promise<void> {
    this.latest = r;
    const started = nowMs();
    await sleep(this.latency.sample(this.deps.rng), signal);
    if (signal.aborted || this.stopping.signal.aborted) return;
    const state = r.state;
    const failed = this.deps.rng() < this.cfg.failureRate;
    const durationMs = Math.round(nowMs() - started);
    const bundles = state.bundles.map((b, i) => {
      const fail = failed && i === 0;
      const first = b.objects[0];
      return {
        name: b.name,
        digest: b.digest,
        created: 0,
        configured: fail ? 0 : b.objects.length,
        unchanged: 0,
        deleted: 0,
        failed: fail ? 1 : 0,
        failures:
          fail && first
            ? [
                `${first.kind}/${first.metadata.namespace ?? ''}/${first.metadata.name}: simulated apply failure`,
              ]
            : [],
      };
    });
    const objects = state.bundles.reduce((n, b) => n + b.objects.length, 0);
    const data: AppliedData = {
      revision: state.revision,
      digest: state.digest,
      generation: r.generation,
      result: failed ? 'failed' : 'applied',
      bundles,
      durationMs,
      ...(failed ? { message: 'simulated apply failure' } : {}),
    };
    this.publisher.publish(failed ? 'apply-failed' : 'applied', data);
    const ack: AckInput = {
      generation: r.generation,
      digest: state.digest,
      revision: state.revision,
      result: failed ? 'failed' : 'applied',
      message: failed ? 'simulated apply failure' : '',
      objectsApplied: failed ? 0 : objects,
      objectsFailed: failed ? 1 : 0,
    };
    if (!failed) this.succeeded(state);
    else if (this.cfg.retryAfterMs > 0) this.retryLater(r, data);
    await this.connection?.ack(r.session, ack);
    this.deps.record({
      k: 'applied',
      agent: this.name,
      at: nowMs(),
      digest: state.digest,
      revision: state.revision,
      result: data.result === 'applied' ? 'applied' : 'failed',
    });
  }

  private succeeded(state: DesiredState): void {
    this.applied = { digest: state.digest, revision: state.revision };
    this.current = state;
    this.reportHealth(state);
  }

  /** As the agent retries a failed apply: the success is published, not acked (the generation was). */
  private retryLater(r: ReceivedState, failed: AppliedData): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      // A newer desired state came meanwhile: the agent would apply that, not retry this.
      if (this.stopping.signal.aborted || this.latest !== r || this.queue.busy) return;
      const bundles = failed.bundles.map((b) => ({
        ...b,
        configured: b.configured + b.failed,
        failed: 0,
        failures: [],
      }));
      const { message: _failure, ...rest } = failed;
      this.publisher.publish('applied', { ...rest, result: 'applied', bundles });
      this.succeeded(r.state);
      this.deps.record({
        k: 'applied',
        agent: this.name,
        at: nowMs(),
        digest: r.state.digest,
        revision: r.state.revision,
        result: 'applied',
        retry: true,
      });
    }, this.cfg.retryAfterMs);
    this.timers.add(timer);
  }

  // As the agent's health tracker: every bundle's health is stated once per applied
  // revision, so the hub can tell "healthy at this content" from "healthy before it".
  private reportHealth(state: DesiredState): void {
    for (const b of state.bundles) {
      const unhealthy = this.deps.rng() < this.cfg.unhealthyRate;
      const next: BundleHealthState = unhealthy ? 'Degraded' : 'Ready';
      const n = b.objects.length;
      const data: HealthChangedData = {
        bundle: b.name,
        revision: state.revision,
        state: next,
        previous: this.health.get(b.name) ?? '',
        counts: {
          ready: unhealthy ? n - 1 : n,
          progressing: 0,
          degraded: unhealthy ? 1 : 0,
          failed: 0,
        },
        reasons: unhealthy
          ? [`${b.objects[0]?.kind ?? 'Object'}: simulated degraded workload`]
          : [],
        digest: state.digest,
      };
      this.health.set(b.name, next);
      this.publisher.publish('health-changed', data);
    }
  }

  /** Publishes a drift detection on one applied object and, in enforce mode, its correction after an apply latency. */
  drift(): void {
    const state = this.current;
    const bundle: BundleDesiredState | undefined =
      state?.bundles[Math.floor(this.deps.rng() * state.bundles.length)];
    const obj = bundle?.objects[Math.floor(this.deps.rng() * bundle.objects.length)];
    if (!state || !bundle || !obj) return;
    const detected: DriftDetectedData = {
      bundle: bundle.name,
      revision: state.revision,
      object: refOf(obj),
      deleted: false,
      changes: [{ path: '/metadata/labels/sim', old: 'a', new: 'b' }],
      manager: 'kubectl-edit',
      mode: bundle.drift.mode,
      heals: 1,
      fight: false,
      ...(bundle.drift.mode === 'enforce' ? { healDelayMs: 0 } : {}),
    };
    const event = this.publisher.publish('drift-detected', detected);
    if (bundle.drift.mode !== 'enforce') return;
    const latencyMs = this.latency.sample(this.deps.rng);
    this.later(latencyMs, () => {
      const corrected: DriftCorrectedData = {
        bundle: bundle.name,
        revision: state.revision,
        object: refOf(obj),
        driftEventId: event.id,
        latencyMs: Math.round(latencyMs),
      };
      this.publisher.publish('drift-corrected', corrected);
    });
  }

  /** Publishes `pairs` drift detected/corrected pairs at once (ingest benchmarks). */
  burst(pairs: number): void {
    for (let i = 0; i < pairs; i++) {
      const state = this.current;
      const b = state?.bundles[i % state.bundles.length];
      const obj = b?.objects[i % b.objects.length];
      if (!state || !b || !obj) return;
      const detected = this.publisher.publish<DriftDetectedData>('drift-detected', {
        bundle: b.name,
        revision: state.revision,
        object: refOf(obj),
        deleted: false,
        changes: [{ path: '/metadata/labels/sim', old: 'a', new: `b${i}` }],
        manager: 'kubectl-edit',
        mode: 'enforce',
        heals: 1,
        fight: false,
        healDelayMs: 0,
      });
      this.publisher.publish<DriftCorrectedData>('drift-corrected', {
        bundle: b.name,
        revision: state.revision,
        object: refOf(obj),
        driftEventId: detected.id,
        latencyMs: 1,
      });
    }
  }

  private async churn(): Promise<void> {
    const conn = this.connection;
    this.connection = undefined;
    await conn?.stop();
    await sleep(this.downtime.sample(this.deps.rng), this.stopping.signal);
    if (!this.stopping.signal.aborted) this.dial();
  }

  // Runs fn after ms unless stop() comes first.
  private later(ms: number, fn: () => void): void {
    if (this.stopping.signal.aborted) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  // Runs fn at the times of a Poisson process of perMinute events per minute, until stop().
  private every(perMinute: number, fn: () => void): void {
    const delay = poissonDelayMs(this.deps.rng, perMinute);
    if (!Number.isFinite(delay)) return;
    this.later(delay, () => {
      fn();
      this.every(perMinute, fn);
    });
  }

  /** Closes the stream and flushes events for up to graceMs. */
  async stop(graceMs = 2_000): Promise<void> {
    this.stopping.abort();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.queue.close(0);
    await this.churning;
    await this.connection?.stop();
    await this.publisher.close(graceMs);
  }
}
