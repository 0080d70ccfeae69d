// The one place the agent is wired: config → Kubernetes client, stores, hub connection,
// event publisher, apply queue. It owns the lifecycle (start, resync, retry, stop).
import { readFile } from 'node:fs/promises';
import {
  Backoff,
  ConfigError,
  LogFields,
  durations,
  errorMessage,
  shortDigest,
  sleep,
} from '@flotilla/common';
import type { AppliedData, DesiredState, Logger } from '@flotilla/common';
import type { ChannelCredentials } from '@grpc/grpc-js';
import type { AgentConfig } from './config/config.js';
import { CapabilitiesMonitor } from './capabilities/monitor.js';
import { HubConnection } from './connection/hub-connection.js';
import { AgentIdentity } from './identity/identity.js';
import { createUser } from '@nats-io/nkeys';
import { jwtAuthenticator } from '@nats-io/transport-node';
import type { Authenticator } from '@nats-io/transport-node';
import { DriftController } from './drift/controller.js';
import { AgentMetrics, serveMetrics } from './report/metrics.js';
import type { Server } from 'node:http';
import type { AckInput, ReceivedState } from './connection/hub-connection.js';
import { InventoryStore } from './inventory/inventory.js';
import { StateStore } from './inventory/state-store.js';
import type { AppliedMark } from './inventory/state-store.js';
import { KubeClient, loadKubeConfig } from './kube/client.js';
import { applyMessage } from './report/apply-message.js';
import { natsSink } from './report/nats-sink.js';
import { EventPublisher } from './report/publisher.js';
import type { EventSink } from './report/publisher.js';
import { LatestWinsQueue } from './sync/queue.js';
import { reconcile } from './sync/reconcile.js';
import type { ReconcileOutcome } from './sync/reconcile.js';
import { DeleteHookStore } from './hooks/store.js';
import type { DependencyHealth } from './sync/dependencies.js';
import { WaitWakes } from './sync/waits.js';

/**
 * Why an apply runs: a state from the hub, the stored state at start, the periodic resync,
 * a retry, a wait that ended (a dependency turned Ready, a hook finished), or only
 * recording a revision.
 */
type Job =
  | { kind: 'hub'; session: string; generation: number; state: DesiredState }
  | { kind: 'stored' | 'resync' | 'retry' | 'wake'; state: DesiredState }
  | { kind: 'record'; state: DesiredState };

async function readSecretFile(path: string, field: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    throw new ConfigError(field, `cannot read ${path}: ${errorMessage(err)}`, { cause: err });
  }
}

/** The running agent. */
export class AgentApp {
  private kube: KubeClient | undefined;
  private inventories!: InventoryStore;
  private stateStore!: StateStore;
  private connection: HubConnection | undefined;
  private identity: AgentIdentity | undefined;
  /** Obtaining the identity, then dialling (mTLS mode); awaited by stop(). */
  private connecting: Promise<void> | undefined;
  private publisher: EventPublisher | undefined;
  private drift: DriftController | undefined;
  private capabilities: CapabilitiesMonitor | undefined;
  private readonly metrics = new AgentMetrics({
    drift: () => this.drift?.detector.counts,
    events: () =>
      this.publisher && {
        pending: this.publisher.pending,
        dropped: this.publisher.dropped,
        oversized: this.publisher.oversized,
      },
  });
  private metricsServer: Server | undefined;
  private readonly queue: LatestWinsQueue<Job>;
  private readonly stopping = new AbortController();
  private readonly retryBackoff: Backoff;
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private lastState: DesiredState | undefined;
  private applied: AppliedMark = { digest: '', revision: '' };
  /** Digest of the desired state the mass-prune guard holds, once its hold was reported; "" when none. */
  private heldDigest = '';
  private deleteHooks!: DeleteHookStore;
  /** Hooks and dependencies a reconcile waits for; their moving wakes the apply. */
  private waits: WaitWakes | undefined;
  /** What the last published apply event said (digest, result, waits), so a repeat stays quiet. */
  private lastPublished = '';

  constructor(
    private readonly config: AgentConfig,
    private readonly logger: Logger,
  ) {
    this.retryBackoff = new Backoff({
      initialMs: config.applyRetryInitialMs,
      maxMs: config.applyRetryMaxMs,
    });
    // A periodic job never replaces a desired state from the hub that waits to be applied.
    this.queue = new LatestWinsQueue(
      (job, signal) => this.runJob(job, signal),
      logger,
      (pending, next) => pending.kind !== 'hub' || next.kind === 'hub',
    );
  }

  /** Connects everything and starts enforcing; resolves once running (hub and NATS connect in the background). */
  async start(): Promise<void> {
    const c = this.config;
    let kc;
    try {
      kc = loadKubeConfig(c.kubeconfigPath);
    } catch (err) {
      throw new ConfigError('kubeconfig', errorMessage(err), { cause: err });
    }
    this.kube = await KubeClient.create(kc);
    const kube = this.kube;
    this.capabilities = new CapabilitiesMonitor({
      get: (req) => kube.request(req),
      intervalMs: c.capabilitiesIntervalMs,
      logger: this.logger.child({ [LogFields.component]: 'capabilities' }),
      onChange: (caps) => void this.connection?.reportCapabilities(caps),
    });
    // The first hello should carry them, so the hub renders for this cluster's real
    // version at once; a slow API server delays the dial by a few seconds at most.
    const firstCapabilities = Promise.race([
      this.capabilities.start(),
      sleep(durations.capabilitiesFirstWait, this.stopping.signal),
    ]);
    // A namespaced-mode agent may not read Namespaces; its install manifests create its own.
    this.inventories = new InventoryStore(this.kube, c.namespace, !c.managedNamespaces);
    this.stateStore = new StateStore(this.kube, c.namespace);
    this.deleteHooks = new DeleteHookStore(this.kube, c.namespace);
    this.waits = new WaitWakes(this.kube, this.dependencyHealth, () => this.wake(), this.logger);
    const token = c.tokenFile ? await readSecretFile(c.tokenFile, 'token-file') : c.token;
    const caPem = c.caFile ? Buffer.from(await readSecretFile(c.caFile, 'ca-file')) : undefined;
    const natsCaPem = c.natsCaFile ? await readSecretFile(c.natsCaFile, 'nats-ca-file') : undefined;
    const natsAuth = c.insecure
      ? {}
      : { authenticator: this.natsAuthenticator(), inboxPrefix: `_INBOX_${c.cluster}` };
    this.publisher = this.eventPublisher(
      natsSink({
        servers: c.natsServers,
        ...(c.natsTls ? { tls: natsCaPem ? { caPem: natsCaPem } : {} } : {}),
        name: `flotilla-agent-${c.cluster}`,
        logger: this.logger,
        ...natsAuth,
      }),
    );
    this.drift = new DriftController(this.kube, this.publisher, {
      logger: this.logger,
      namespaces: c.managedNamespaces,
      onHealth: (bundle) => {
        if (this.waits?.awaits(bundle) && this.lastState) this.waits.check(this.lastState);
      },
    });
    if (c.metricsAddr) {
      try {
        this.metricsServer = await serveMetrics(c.metricsAddr, this.metrics);
      } catch (err) {
        throw new ConfigError(
          'metrics-addr',
          `cannot listen on ${c.metricsAddr}: ${errorMessage(err)}`,
          { cause: err },
        );
      }
    }
    await this.loadStoredState();
    if (!c.insecure) {
      // The stored state is enforced meanwhile; the hub is dialled once the cluster has its certificate.
      const identity = new AgentIdentity({
        cluster: c.cluster,
        hubAddress: c.hubAddress,
        namespace: c.namespace,
        kube: this.kube,
        logger: this.logger.child({ [LogFields.component]: 'identity' }),
        bootstrapToken: c.bootstrapTokenFile
          ? await readSecretFile(c.bootstrapTokenFile, 'bootstrap-token-file')
          : undefined,
        caPem: caPem?.toString('utf8'),
        natsKey: () => {
          const user = createUser();
          return { seed: new TextDecoder().decode(user.getSeed()), publicKey: user.getPublicKey() };
        },
      });
      this.identity = identity;
      identity.onRenewed(() => this.connection?.useCredentials(identity.channelCredentials()));
      this.connecting = Promise.all([identity.ready(), firstCapabilities]).then(([id]) => {
        if (id && !this.stopping.signal.aborted)
          this.dial(identity.channelCredentials(), undefined, undefined);
      });
    } else {
      this.connecting = firstCapabilities.then(() => {
        if (!this.stopping.signal.aborted) this.dial(undefined, token, caPem);
      });
    }
    this.resyncTimer = setInterval(() => {
      if (this.lastState && !this.queue.busy)
        this.queue.submit({ kind: 'resync', state: this.lastState });
    }, c.resyncIntervalMs);
    this.logger.info(
      {
        [LogFields.cluster]: c.cluster,
        hub: c.hubAddress,
        namespace: c.namespace,
        version: c.agentVersion,
        mtls: !c.insecure,
        natsTls: c.natsTls,
      },
      'agent started',
    );
    if (c.insecure)
      this.logger.warn(
        'INSECURE MODE: plaintext connection to the hub without a cluster certificate; development only',
      );
  }

  // The buffer directory is read at once: a volume that cannot be written fails the start, naming the flag.
  private eventPublisher(sink: EventSink): EventPublisher {
    const c = this.config;
    try {
      return new EventPublisher(sink, {
        cluster: c.cluster,
        logger: this.logger,
        bufferSize: c.eventBufferSize,
        ...(c.eventBufferDir ? { bufferDir: c.eventBufferDir } : {}),
      });
    } catch (err) {
      void sink.close();
      throw new ConfigError(
        'event-buffer-dir',
        `cannot use ${c.eventBufferDir}: ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    }
  }

  /** The cluster's NATS user JWT, read at every (re)connect so a renewed one is used; none before registration or when the hub issues none. */
  private natsAuthenticator(): Authenticator {
    return (nonce?: string) => {
      const id = this.identity?.identity;
      if (!id?.natsJwt || !id.natsSeed) return undefined;
      return jwtAuthenticator(id.natsJwt, new TextEncoder().encode(id.natsSeed))(nonce);
    };
  }

  private dial(
    credentials: ChannelCredentials | undefined,
    token: string | undefined,
    caPem: Buffer | undefined,
  ): void {
    const c = this.config;
    this.connection = new HubConnection(
      {
        cluster: c.cluster,
        address: c.hubAddress,
        agentVersion: c.agentVersion,
        ...(token ? { token } : {}),
        insecure: c.insecure,
        ...(caPem ? { caPem } : {}),
        ...(credentials ? { credentials } : {}),
        keepaliveTimeMs: c.keepaliveTimeMs,
        keepaliveTimeoutMs: c.keepaliveTimeoutMs,
        reconnectInitialMs: c.reconnectInitialMs,
        reconnectMaxMs: c.reconnectMaxMs,
        heartbeatMs: c.heartbeatMs,
        logger: this.logger,
      },
      {
        appliedMark: () => this.applied,
        capabilities: () => this.capabilities?.current,
        onDesired: (r: ReceivedState) => void this.queue.submit({ kind: 'hub', ...r }),
        onUpToDate: (digest, revision) => this.onUpToDate(digest, revision),
      },
    );
    this.connection.start();
  }

  /** Stops accepting work, lets the current apply finish (or aborts it), closes the stream and drains NATS. */
  async stop(graceMs = this.config.shutdownGraceMs): Promise<void> {
    this.stopping.abort();
    clearInterval(this.resyncTimer);
    clearTimeout(this.retryTimer);
    this.waits?.stop();
    await this.queue.close(Math.floor(graceMs / 2));
    this.identity?.stop();
    await this.connecting;
    await this.connection?.stop();
    await this.capabilities?.stop();
    await this.drift?.stop();
    this.metricsServer?.close();
    await this.publisher?.close(Math.floor(graceMs / 4));
    this.kube?.close();
    this.logger.info({ [LogFields.cluster]: this.config.cluster }, 'agent stopped');
  }

  /** Offline autonomy: re-apply the last stored state before the hub answers. A few tries, then go on without it. */
  private async loadStoredState(): Promise<void> {
    const backoff = new Backoff({ initialMs: 1_000, maxMs: 10_000 });
    for (let attempt = 1; attempt <= 5 && !this.stopping.signal.aborted; attempt++) {
      try {
        const stored = await this.stateStore.load(this.stopping.signal);
        if (!stored) return;
        if (stored.state.cluster !== this.config.cluster) {
          this.logger.warn(
            { stored: stored.state.cluster },
            'stored desired state is for another cluster; ignored',
          );
          return;
        }
        this.lastState = stored.state;
        this.applied = stored.applied;
        this.logger.info(
          {
            [LogFields.revision]: stored.state.revision,
            [LogFields.digest]: shortDigest(stored.state.digest),
          },
          'enforcing stored desired state',
        );
        this.queue.submit({ kind: 'stored', state: stored.state });
        return;
      } catch (err) {
        const delayMs = backoff.next();
        this.logger.warn(
          { [LogFields.err]: errorMessage(err), attempt, delayMs },
          'cannot read stored desired state (Kubernetes API unreachable?); retrying',
        );
        await sleep(delayMs, this.stopping.signal);
      }
    }
    this.logger.warn('starting without the stored desired state; the hub will send it');
  }

  private onUpToDate(digest: string, revision: string): void {
    if (this.lastState?.digest !== digest) {
      this.logger.warn(
        { [LogFields.digest]: shortDigest(digest) },
        'hub says up to date, but that state is not stored here',
      );
      return;
    }
    this.logger.info(
      { [LogFields.revision]: revision, [LogFields.digest]: shortDigest(digest) },
      'desired state up to date',
    );
    // The hub wants what is enforced again (say, the held commit was reverted): no hold remains.
    this.heldDigest = '';
    if (revision !== this.lastState.revision)
      this.queue.submit({ kind: 'record', state: { ...this.lastState, revision } });
  }

  private async save(
    state: DesiredState,
    applied: AppliedMark,
    signal: AbortSignal,
  ): Promise<void> {
    try {
      await this.stateStore.save(state, applied, signal);
    } catch (err) {
      this.logger.warn(
        { [LogFields.err]: errorMessage(err) },
        'cannot store the desired state; it will not survive a restart',
      );
    }
  }

  private async runJob(job: Job, signal: AbortSignal): Promise<void> {
    if (job.kind === 'record') {
      this.lastState = job.state;
      if (this.applied.digest === job.state.digest)
        this.applied = { digest: job.state.digest, revision: job.state.revision };
      return this.save(job.state, this.applied, signal);
    }
    let outcome: ReconcileOutcome | undefined;
    let error: string | undefined;
    this.drift?.beforeApply();
    // A held state is neither stored nor enforced: the earlier one stays both.
    const admit = async (): Promise<void> => {
      // Stored before applying, so a crash mid-apply restarts with the newest verified state.
      if (job.kind === 'hub') await this.save(job.state, this.applied, signal);
      this.lastState = job.state;
    };
    try {
      outcome = await reconcile(this.kube as KubeClient, this.inventories, job.state, {
        concurrency: this.config.applyConcurrency,
        namespaces: this.config.managedNamespaces,
        beforeWrites: admit,
        dependencyHealth: this.dependencyHealth,
        deleteHooks: this.deleteHooks,
        signal,
      });
    } catch (err) {
      error = errorMessage(err);
      if (this.lastState !== job.state) await admit();
    }
    if (outcome?.held) return this.hold(job, outcome);
    if (job.kind === 'hub') this.heldDigest = '';
    // Armed before the watches report health, so a dependency turning Ready is not missed.
    this.waits?.arm(outcome);
    await this.drift?.afterApply(
      job.state,
      outcome?.bundles ?? [],
      signal,
      new Set(outcome?.notApplied ?? []),
    );
    this.waits?.check(job.state);
    // A write may have installed or removed a CRD or an API service: the hub renders
    // Helm charts for what the cluster serves.
    if ((outcome?.writes ?? 0) > 0) this.capabilities?.refresh();
    const result = outcome?.result ?? 'failed';
    // A waiting state is not recorded as applied: Hello keeps the last fully applied digest.
    if (
      result !== 'failed' &&
      result !== 'waiting' &&
      (this.applied.digest !== job.state.digest || this.applied.revision !== job.state.revision)
    ) {
      this.applied = { digest: job.state.digest, revision: job.state.revision };
      await this.save(job.state, this.applied, signal);
    }
    this.report(job, outcome, error);
    if (job.kind === 'hub')
      await this.connection?.ack(job.session, this.ackOf(job, outcome, error));
    // A wait is not retried on a timer: its wake (hook finished, dependency Ready) reapplies.
    this.scheduleRetry(result === 'partial' || result === 'failed');
  }

  private wake(): void {
    if (this.lastState) this.queue.submit({ kind: 'wake', state: this.lastState });
  }

  /** Whether a bundle is healthy at a digest on this cluster (dependsOn). */
  private readonly dependencyHealth: DependencyHealth = (bundle, digest) =>
    this.drift?.health.readyAt(bundle, digest) ?? {
      ready: false,
      reason: 'health is not tracked yet',
    };

  /**
   * A held state: nothing was applied or pruned, and the earlier state stays the one
   * enforced (drift, resync, retry). The hold is acked, published, and not retried: a new
   * commit or an opt-in releases it.
   */
  private async hold(
    job: Exclude<Job, { kind: 'record' }>,
    outcome: ReconcileOutcome,
  ): Promise<void> {
    this.drift?.cancelApply();
    // Re-checks of a hold already reported (a retry after an unreadable inventory) stay quiet.
    const repeat = this.heldDigest === job.state.digest && job.kind !== 'hub';
    this.heldDigest = job.state.digest;
    if (!repeat) {
      this.logger.warn(
        {
          [LogFields.revision]: job.state.revision,
          [LogFields.digest]: shortDigest(job.state.digest),
          trigger: job.kind,
          deleting: outcome.held?.deleting,
          managed: outcome.held?.managed,
        },
        'desired state held: it would delete too many objects',
      );
      this.report(job, outcome, undefined);
    }
    if (job.kind === 'hub')
      await this.connection?.ack(job.session, this.ackOf(job, outcome, undefined));
  }

  private report(
    job: Exclude<Job, { kind: 'record' }>,
    outcome: ReconcileOutcome | undefined,
    error: string | undefined,
  ): void {
    const s = job.state;
    const totals = { created: 0, configured: 0, unchanged: 0, deleted: 0, failed: 0 };
    for (const b of outcome?.bundles ?? [])
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += b[k];
    const result = outcome?.result ?? 'failed';
    const fields = {
      [LogFields.revision]: s.revision,
      [LogFields.digest]: shortDigest(s.digest),
      trigger: job.kind,
      result,
      ...totals,
      [LogFields.durationMs]: outcome?.durationMs ?? 0,
    };
    if (error) this.logger.warn({ ...fields, [LogFields.err]: error }, 'apply failed');
    else this.logger.info(fields, 'apply finished');
    this.metrics.observeApply(result, outcome?.durationMs ?? 0);
    const waits = (outcome?.bundles ?? []).flatMap((b) =>
      b.waiting ? [`bundle ${b.name} ${b.waiting.reason}`] : [],
    );
    // Quiet re-applies (nothing written, nothing failed, nothing new waits) are not events;
    // the first one after a wait or a failure is: it is how the hub learns the state landed.
    const said = `${s.digest}|${result}|${waits.join(';')}`;
    const quiet = result === 'applied' || result === 'waiting';
    if (job.kind !== 'hub' && quiet && (outcome?.writes ?? 0) === 0) {
      if (this.lastPublished === '' && result === 'applied') return;
      if (this.lastPublished === said) return;
    }
    // While a hold is reported, re-applies of the earlier state must not cover it up.
    if (this.heldDigest !== '' && this.heldDigest !== s.digest) return;
    this.lastPublished = said;
    const message = applyMessage(outcome, error);
    const data: AppliedData = {
      revision: s.revision,
      digest: s.digest,
      generation: job.kind === 'hub' ? job.generation : 0,
      result,
      bundles: outcome?.bundles ?? [],
      durationMs: outcome?.durationMs ?? 0,
      ...(message ? { message } : {}),
    };
    this.publisher?.publish(
      result === 'applied' || result === 'waiting' ? 'applied' : 'apply-failed',
      data,
    );
  }

  private ackOf(
    job: Extract<Job, { kind: 'hub' }>,
    outcome: ReconcileOutcome | undefined,
    error: string | undefined,
  ): AckInput {
    const message = applyMessage(outcome, error);
    return {
      generation: job.generation,
      digest: job.state.digest,
      revision: job.state.revision,
      result: outcome?.result ?? 'failed',
      message: message.slice(0, 2_000),
      objectsApplied: outcome?.objectsApplied ?? 0,
      objectsFailed: outcome?.objectsFailed ?? 0,
    };
  }

  /** After a failed or partial apply, try the last state again later (growing delay); a success resets it. */
  private scheduleRetry(needed: boolean): void {
    clearTimeout(this.retryTimer);
    if (!needed) return this.retryBackoff.reset();
    const delayMs = this.retryBackoff.next();
    this.logger.info({ delayMs }, 'apply incomplete; retrying later');
    this.retryTimer = setTimeout(() => {
      if (this.lastState) this.queue.submit({ kind: 'retry', state: this.lastState });
    }, delayMs);
  }
}
