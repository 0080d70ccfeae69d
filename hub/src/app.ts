// The hub's one wiring place. It owns the lifecycle of every module:
//
//   config → sources → renderer → desired states → stream server (gRPC) → status → API
//
// start() brings them up in that order (what serves last starts last, so nobody is
// served from a half-built hub) and stop() takes them down in reverse. Source and
// renderer are reached through the small interfaces below, so they can be faked.
import { join } from 'node:path';
import type { DesiredState, Logger } from '@flotilla/common';
import { FlotillaError, LogFields, durations, errorMessage, shortDigest } from '@flotilla/common';
import type { HubConfig } from './config/hub-config.js';
import { readAgentToken } from './config/load.js';
import { whenQuiet } from './history/replay-when-quiet.js';
import { startHttpApi } from './api/http.js';
import type { RunningHttpApi } from './api/http.js';
import { fleetServiceHandlers } from './api/grpc-fleet.js';
import { ReadAccess } from './api/access.js';
import type { Degradation, SourceChart, SourceStatus } from './api/types.js';
import { sourceRenderErrors } from './api/source-errors.js';
import { chartChanges, sourceCharts } from './api/source-charts.js';
import { renderFailureAlerts } from './notify/render-alerts.js';
import { rolloutAlerts } from './notify/rollout-alerts.js';
import { MAX_RENDER_FAILURES, renderFailureRecord } from './status/render-failures.js';
import type { RenderFailureRecord } from './status/render-failures.js';
import { AgentStreamService } from './stream/agent-stream.js';
import { boundedObserver } from './stream/bounded-observer.js';
import { DesiredStateStore } from './stream/desired-store.js';
import { startGrpcServer } from './stream/grpc-server.js';
import type { RunningGrpcServer } from './stream/grpc-server.js';
import { EventsConsumer } from './status/events-consumer.js';
import { FleetStatus, STATUS_SWEEP_INTERVAL_MS } from './status/fleet-status.js';
import { STATUS_CONSUMER } from './status/events-consumer.js';
import { HistoryLog } from './history/history-log.js';
import { replayHistory } from './history/replay.js';
import { HubMetrics } from './metrics/hub-metrics.js';
import { notifierFromConfig } from './notify/from-config.js';
import type { Alert, Notifier } from './notify/notifier.js';
import { Lease } from './lease/lease.js';
import { KvAlertLedger, LeaderAlerts } from './lease/leader-alerts.js';
import { LeaderRollouts } from './lease/leader-rollouts.js';
import { ReplicaFetchTriggers } from './lease/fetch-triggers.js';
import { RolloutActionForwarding } from './lease/forward-actions.js';
import { NatsPartitionGuard, refusingWhile } from './lease/nats-partition.js';
import { PeerProbe } from './lease/peer-probe.js';
import { alertOnTransitions } from './notify/status-alerts.js';
import type { FleetEntry } from './status/fleet-status.js';
import { KvStatusPersistence } from './status/kv-persistence.js';
import { NatsLink, natsTlsOf } from './status/nats-link.js';
import { ClusterEventRate } from './status/event-rate.js';
import {
  SESSION_EVENTS_STOP_GRACE_MS,
  SessionEventPublisher,
  jetStreamPublish,
} from './status/session-publisher.js';
import { createGitSource } from './source/from-config.js';
import { WebhookHandler } from './source/webhook.js';
import { describeRef } from './source/refs.js';
import type { WebhookTarget } from './source/webhook.js';
import type { SourceSnapshot } from './source/git-source.js';
import { checkRemoteFiles, renderOptionsOf, renderProgramsOf } from './render/render-config.js';
import { sandboxFor } from './render/sandbox.js';
import type { RenderFailure, RenderInputs } from './render/types.js';
import { WorkerRenderer } from './render/worker-renderer.js';
import { RendererLink } from './render/remote/link.js';
import { LastRenderingFile } from './render/last-rendering.js';
import { CapabilitiesStore } from './capabilities/store.js';
import { KvCapabilitiesPersistence } from './capabilities/kv.js';
import { renderedWith } from './capabilities/rendered-with.js';
import { IdentityAuthority } from './identity/authority.js';
import { KvIdentityRecords } from './identity/kv-records.js';
import { identityHandlers, peerOf } from './identity/service.js';
import { agentUserJwt } from './identity/nats-jwt.js';
import { NatsRevocationPublisher } from './identity/nats-revocation.js';
import { NatsViolationWatch } from './identity/nats-violations.js';
import { credsAuthenticator } from '@nats-io/transport-node';
import { RolloutController } from './rollout/controller.js';
import { KvRolloutStore } from './rollout/store.js';
import type { RolloutStore } from './rollout/store.js';
import { RolloutHistoryStream } from './rollout/history.js';
import { AuditLog } from './audit/audit-log.js';
import { AuditStream } from './audit/audit-stream.js';
import type { HistoryRecord } from './rollout/bundle-state.js';
import type { RolloutPlan } from './render/types.js';
import { readConfigFile } from './config/load.js';

/** A fleet repo revision as a source hands it over (GitSource's SourceSnapshot fits). */
export interface FleetSnapshot {
  source: string;
  revision: string;
}

/** What the hub needs from a Git source (GitSource implements it). */
export interface FleetSource<S extends FleetSnapshot = FleetSnapshot> {
  readonly name: string;
  onSnapshot(listener: (snapshot: S) => void | Promise<void>): () => void;
  start(): void;
  stop(): Promise<void>;
  status(): {
    lastFetchedRevision?: string | undefined;
    lastFetchAt?: Date | undefined;
    lastError?: string | undefined;
    /** Optional extras GitSource reports (docs/sources.md). */
    ref?: string | undefined;
    lastErrorCode?: string | undefined;
    lastErrorAt?: Date | undefined;
    rejectedRevision?: string | undefined;
    /** First failure of the current run of failures (GitSource sets it). */
    failingSince?: Date | undefined;
  };
  /** Push webhook target, when the source has a webhook secret (GitSource.webhook). */
  readonly webhook?: WebhookTarget | undefined;
}

/** What one render of a snapshot gives the hub. */
export interface FleetRendering {
  revision: string;
  /** Desired state per cluster (the renderer keeps the last good bundles of a failed one). */
  clusters: ReadonlyMap<string, DesiredState>;
  /** Labels of every declared cluster, for selectors. */
  labels: ReadonlyMap<string, Record<string, string>>;
  errors: readonly { message: string; bundle?: string | undefined; cluster?: string | undefined }[];
  /** Per cluster, what failed to render there (RenderResult.failures); nothing when absent. */
  failures?: ReadonlyMap<string, readonly RenderFailure[]>;
  /** Rollout plan per bundle read at this revision (RenderResult.rollouts); none when absent. */
  rollouts?: ReadonlyMap<string, RolloutPlan>;
  /** Some bundle uses a chart from a repository or registry: rendered again every charts.resolveInterval. */
  resolvesCharts?: boolean;
}

/** What the hub needs from the renderer. */
export interface HubRenderer<S extends FleetSnapshot = FleetSnapshot> {
  /** Renders a snapshot with per-cluster inputs (the clusters' reported capabilities). */
  render(snapshot: S, inputs: RenderInputs): Promise<FleetRendering>;
  /** Releases what rendering holds (the render worker threads); called by HubApp.stop. */
  stop?(): Promise<void>;
}

/** Builds a source for one configured source entry. */
export type SourceFactory<S extends FleetSnapshot> = (
  cfg: HubConfig,
  index: number,
  logger: Logger,
) => Promise<FleetSource<S>>;

/** The replaceable parts of the hub. */
export interface HubParts<S extends FleetSnapshot> {
  createSource: SourceFactory<S>;
  renderer: HubRenderer<S>;
  logger: Logger;
}

/** Lifecycle states of the hub. */
export type HubState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

interface SourceEntry<S extends FleetSnapshot> {
  source: FleetSource<S>;
  url: string;
  branch: string;
  rendering: FleetRendering | undefined;
  renderError: string;
  /** A render that threw (not a bad commit: the renderer never rejects on bad input). */
  renderThrew: { revision: string; message: string } | undefined;
  /** Render errors of the last rendering, grouped for the sources API. */
  renderErrors: ReturnType<typeof sourceRenderErrors>;
  /** Remote Helm charts the last rendering uses, for the sources API. */
  charts?: SourceChart[];
  /** The snapshot rendered last, rendered again when clusters' capabilities change. */
  snapshot?: S;
  /** Renders started and the newest one whose result was taken, so an older finishing late is dropped. */
  renders?: { started: number; taken: number };
  /** The capabilities version the last finished render began with (the stream's held first states wait for it). */
  capabilitiesVersion?: number;
  /** Where the last good rendering is kept for the next start. */
  saved: LastRenderingFile;
  /** Set while the rendering served was read from `saved` at start (no render taken since). */
  restored?: { savedAt: Date };
}

/** The hub process: build it with a config and parts, start(), stop(). */
export class HubApp<S extends FleetSnapshot = FleetSnapshot> {
  private stateValue: HubState = 'new';
  private startedAt: Date | undefined;
  /** The history replay has not finished (or failed) yet: history reads are partial. */
  private historyLoading = true;
  private readonly stopSignal = new AbortController();
  private readonly log: Logger;
  private readonly desired = new DesiredStateStore();
  private readonly status: FleetStatus;
  private readonly nats: NatsLink;
  private readonly events: EventsConsumer;
  private readonly persistence: KvStatusPersistence;
  /** Settles once the persisted status was read (or the read failed); the consumer starts then. */
  private statusRestored: Promise<void> = Promise.resolve();
  /** The once-only work lease, when this hub is one of several replicas (replicaId set). */
  private readonly lease: Lease | undefined;
  /** Replicas: webhooks received elsewhere make this one fetch, and the other way round. */
  private readonly fetchTriggers: ReplicaFetchTriggers | undefined;
  /** Replicas: rollout actions go to the lease holder. */
  private readonly actionForwarding: RolloutActionForwarding | undefined;
  /** Replicas: agents are sent to other replicas while this one is cut from NATS. */
  private readonly partition: NatsPartitionGuard | undefined;
  private readonly capabilities: CapabilitiesStore;
  private readonly capabilitiesKv: KvCapabilitiesPersistence;
  private rerenderTimer: NodeJS.Timeout | undefined;
  /** The renderer, when kustomize and helm run there (render.remote). */
  private rendererLink: RendererLink | undefined;
  private chartsTimer: NodeJS.Timeout | undefined;
  private readonly sessionEvents: SessionEventPublisher;
  private readonly sources: SourceEntry<S>[] = [];
  private stream: AgentStreamService | undefined;
  private grpc: RunningGrpcServer | undefined;
  private http: RunningHttpApi | undefined;
  private identity: IdentityAuthority | undefined;
  private natsCreds = new Uint8Array();
  private natsRevocation: NatsRevocationPublisher | undefined;
  private natsViolations: NatsViolationWatch | undefined;
  private readonly history: HistoryLog;
  private readonly metrics: HubMetrics;
  private notifier: Notifier | undefined;
  /** Alerts sent by the lease holder only (replicas); undefined: the notifier sends all. */
  private alerts: LeaderAlerts | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly rollouts: RolloutController | LeaderRollouts;
  private readonly rolloutHistory: RolloutHistoryStream;
  private readonly auditStream: AuditStream;
  private readonly audit: AuditLog;
  /** The merged head of every source's last rendering, before rollouts gate it. */
  private head:
    | {
        states: Map<string, DesiredState>;
        labels: Map<string, Record<string, string>>;
        failures: Map<string, RenderFailureRecord[]>;
        renderedWith: (cluster: string) => number;
      }
    | undefined;

  constructor(
    readonly config: HubConfig,
    private readonly parts: HubParts<S>,
  ) {
    this.log = parts.logger;
    this.status = new FleetStatus({
      offlineAfterMs: config.offlineAfterMs,
      logger: this.log.child({ [LogFields.component]: 'status' }),
    });
    this.nats = new NatsLink({
      url: config.nats.url,
      ...natsTlsOf(config.nats),
      logger: this.log.child({ [LogFields.component]: 'nats' }),
      // Read at start (startIdentity); the function form lets the link pick them up then.
      ...(config.nats.credsFile ? { authenticator: credsAuthenticator(() => this.natsCreds) } : {}),
    });
    // Several replicas of one hub: once-only work goes to the holder of this lease.
    if (config.status.replicaId)
      this.lease = new Lease({
        connection: () => this.nats.connection(),
        name: config.status.hubId,
        holder: config.status.replicaId,
        replicas: config.nats.replicas,
        logger: this.log.child({ [LogFields.component]: 'lease' }),
      });
    this.history = new HistoryLog({ retentionMs: config.status.history.retentionMs });
    this.metrics = new HubMetrics(this.status);
    this.status.onCut((cluster, what) => this.metrics.inputCut(cluster, what));
    this.metrics.degradedFrom(() => this.degraded());
    this.metrics.historyFrom(() => ({ entries: this.history.size, bytes: this.history.bytesOf() }));
    const rate = new ClusterEventRate({
      onLimited: (cluster) => this.status.noteCut(cluster, 'events.rate', rate.describe()),
    });
    this.events = new EventsConsumer({
      connection: () => this.nats.connection(),
      sink: (kind, event) => {
        this.history.add(kind, event);
        const outcome = this.status.foldEvent(kind, event);
        this.metrics.eventConsumed(kind, event, outcome);
        return outcome;
      },
      logger: this.log.child({ [LogFields.component]: 'events' }),
      durable: statusDurable(config.status),
      ...(config.status.replicaId ? { inactiveThresholdMs: REPLICA_CONSUMER_INACTIVE_MS } : {}),
      replicas: config.nats.replicas,
      onMalformed: () => this.metrics.eventMalformed(),
      admit: (cluster, storedAtMs) => rate.admit(cluster, storedAtMs),
      // Persist, then ack: an event is acked only once the status holding it is in KV.
      ackAfterSave: true,
      onBacklog: () => void this.persistence.flush(),
      // A replica acks what it folds without the lease, unsaved: after a restart it folds
      // again from where the restored status (the lease holder's save) ends.
      resumeAfter: () => this.persistence.eventsSeq,
    });
    this.sessionEvents = new SessionEventPublisher({
      publish: jetStreamPublish(() => this.nats.connection()),
      hubId: config.status.hubId,
      logger: this.log.child({ [LogFields.component]: 'session-events' }),
      onOutcome: (o) => this.metrics.sessionEvent(o),
    });
    this.persistence = new KvStatusPersistence({
      connection: () => this.nats.connection(),
      isConnected: () => this.nats.connected,
      status: this.status,
      logger: this.log.child({ [LogFields.component]: 'status-kv' }),
      checkpoint: () => this.events.checkpoint(),
      replicas: config.nats.replicas,
      // One of several replicas: only the lease holder writes status.
      ...(this.lease ? { writes: () => this.lease?.leading === true } : {}),
    });
    this.capabilities = new CapabilitiesStore({
      logger: this.log.child({ [LogFields.component]: 'capabilities' }),
    });
    this.capabilitiesKv = new KvCapabilitiesPersistence({
      connection: () => this.nats.connection(),
      isConnected: () => this.nats.connected,
      store: this.capabilities,
      logger: this.log.child({ [LogFields.component]: 'capabilities-kv' }),
      replicas: config.nats.replicas,
    });
    this.capabilities.onChange(() => this.scheduleRerender());
    this.rolloutHistory = new RolloutHistoryStream(
      () => this.nats.connection(),
      config.status.history.retentionMs,
      config.nats.replicas,
    );
    this.auditStream = new AuditStream(
      () => this.nats.connection(),
      config.status.history.retentionMs,
      config.nats.replicas,
    );
    this.audit = new AuditLog({
      writer: this.auditStream,
      history: this.history,
      logger: this.log.child({ [LogFields.component]: 'audit' }),
    });
    const rolloutStore = new KvRolloutStore(() => this.nats.connection(), config.nats.replicas);
    const controller = (store: RolloutStore): RolloutController =>
      new RolloutController({
        store,
        history: this.rolloutHistory,
        status: this.status,
        logger: this.log.child({ [LogFields.component]: 'rollout' }),
        onChange: () => this.deliver(),
        onTransitions: (records) => this.rolloutTransitions(records),
        onDecision: (ms) => this.metrics.rolloutDecision(ms),
      });
    // Replicas: only the lease holder decides and writes rollout state; the others follow it
    // and forward actions to it.
    const replicaId = config.status.replicaId;
    if (this.lease && replicaId) {
      const leader: LeaderRollouts = new LeaderRollouts({
        lease: this.lease,
        store: rolloutStore,
        controller,
        logger: this.log.child({ [LogFields.component]: 'rollout' }),
        onChange: () => this.deliver(),
        forward: (...a) => forwarding.forward(...a),
      });
      const forwarding: RolloutActionForwarding = new RolloutActionForwarding({
        connection: () => this.nats.connection(),
        hubId: config.status.hubId,
        replicaId,
        lease: this.lease,
        act: (...a) => leader.actAsHolder(...a),
        local: (bundle) => leader.get(bundle),
        logger: this.log.child({ [LogFields.component]: 'rollout' }),
      });
      this.rollouts = leader;
      this.actionForwarding = forwarding;
      this.fetchTriggers = new ReplicaFetchTriggers({
        connection: () => this.nats.connection(),
        hubId: config.status.hubId,
        replicaId,
        target: (name) => {
          const webhook = this.sources.find((e) => e.source.name === name)?.source.webhook;
          return webhook ? () => webhook.triggerNow() : undefined;
        },
        logger: this.log.child({ [LogFields.component]: 'webhook' }),
      });
      // Before sending its agents away, a replica cut from NATS asks the others over HTTP
      // whether one reaches NATS (hub.yaml peers); with no peers it sends them away.
      const peers =
        config.status.peers.length > 0
          ? new PeerProbe({
              peers: config.status.peers,
              caPem: () => (config.insecure ? undefined : this.identity?.caPem),
              logger: this.log.child({ [LogFields.component]: 'nats' }),
            })
          : undefined;
      this.partition = new NatsPartitionGuard({
        isConnected: () => this.nats.connected,
        onCut: (reason) => {
          const n = this.stream?.closeAll(reason) ?? 0;
          this.log.warn({ streams: n }, 'agent streams closed: NATS unreachable');
        },
        ...(peers ? { servingPeer: () => peers.servingPeer() } : {}),
        logger: this.log.child({ [LogFields.component]: 'nats' }),
      });
    } else this.rollouts = controller(rolloutStore);
    // Health and connection changes of clusters in a rollout move it on.
    this.status.onTouched((cluster) => this.rollouts.statusChanged(cluster));
  }

  /** Current lifecycle state. */
  get state(): HubState {
    return this.stateValue;
  }

  /** Bound gRPC port (useful with port 0). */
  get grpcPort(): number {
    return this.grpc?.port ?? 0;
  }

  /** Bound HTTP port (useful with port 0). */
  get httpPort(): number {
    return this.http?.port ?? 0;
  }

  private transition(to: HubState): void {
    this.log.info({ from: this.stateValue, to }, 'hub state');
    this.stateValue = to;
  }

  /** Starts every module; on failure stops what started and rethrows. */
  async start(): Promise<void> {
    if (this.stateValue !== 'new')
      throw new Error(`hub cannot start from state ${this.stateValue}`);
    this.transition('starting');
    this.startedAt = new Date();
    try {
      await this.startModules();
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.transition('running');
  }

  private async startModules(): Promise<void> {
    const cfg = this.config;
    const token = await readAgentToken(cfg);
    const identity = await this.startIdentity(token);
    this.startSandbox();
    this.startRendererLink();
    for (const [i, s] of cfg.sources.entries()) {
      const source = await this.parts.createSource(cfg, i, this.log);
      this.sources.push({
        source,
        url: s.url,
        branch: s.ref.kind === 'branch' ? s.ref.name : describeRef(s.ref),
        rendering: undefined,
        renderError: '',
        renderThrew: undefined,
        renderErrors: { groups: [], total: 0 },
        saved: new LastRenderingFile({
          dir: join(cfg.cacheDir, SAVED_RENDERINGS_DIR),
          source: { name: s.name, url: s.url, ref: JSON.stringify(s.ref), path: s.path },
          logger: this.log.child({ [LogFields.component]: 'render', [LogFields.source]: s.name }),
        }),
      });
    }
    this.nats.start();
    // Before any render: a restarted hub renders with the capabilities agents reported.
    await Promise.all([this.restoreStatus(), this.restoreCapabilities()]);
    await this.restoreRollouts();
    // Served at once, whether Git and NATS are up or not; the first render replaces it.
    await this.restoreRenderings();
    // After the agents that dial back at a restart: they are served first.
    const agentsBack = whenQuiet(
      () => this.stream?.sessionsStarted ?? 0,
      durations.historyReplayQuiet,
      durations.historyReplayMaxDelay,
      this.stopSignal.signal,
    );
    void agentsBack.then(() => (this.stopSignal.signal.aborted ? undefined : this.replayHistory()));
    this.lease?.start();
    this.actionForwarding?.start();
    this.fetchTriggers?.start();
    this.partition?.start();
    const notifier = notifierFromConfig(
      cfg.status.notify,
      process.env,
      this.log.child({ [LogFields.component]: 'notify' }),
      (w, o) => this.metrics.notification(w, o),
    );
    this.notifier = notifier;
    if (notifier && this.lease)
      this.alerts = new LeaderAlerts({
        ledger: new KvAlertLedger({
          connection: () => this.nats.connection(),
          dedupeWindowMs: cfg.status.notify.dedupeWindowMs,
          replicas: cfg.nats.replicas,
        }),
        lease: this.lease,
        sink: notifier,
        hubId: cfg.status.hubId,
        keepMs: 4 * durations.hubLeaseTtl,
        logger: this.log.child({ [LogFields.component]: 'notify' }),
      });
    if (this.alerts) alertOnTransitions(this.status, this.alerts);
    else if (notifier) alertOnTransitions(this.status, notifier);
    this.sweeper = setInterval(() => {
      this.status.sweep();
      this.history.prune();
    }, STATUS_SWEEP_INTERVAL_MS);
    this.sweeper.unref();
    // Chart version ranges are resolved again at the same commit: a new matching version
    // is a new desired state (render/charts/resolver.ts).
    this.chartsTimer = setInterval(() => {
      for (const entry of this.sources)
        if (entry.snapshot && entry.rendering?.resolvesCharts)
          void this.onSnapshot(entry, entry.snapshot, true);
    }, cfg.charts.resolveIntervalMs);
    this.chartsTimer.unref();
    this.stream = new AgentStreamService({
      source: this.desired,
      capabilities: this.capabilities,
      // Every session start and end also becomes a durable event (history, other hubs);
      // what agents send is bounded before anything sees it.
      observer: boundedObserver(
        this.sessionEvents.observe(this.metrics.observeSessions(this.status)),
        (cluster, what) => this.status.noteCut(cluster, what),
      ),
      logger: this.log.child({ [LogFields.component]: 'stream' }),
      token,
      heartbeatIntervalMs: cfg.heartbeatIntervalMs,
      sendBudgetMs: cfg.grpc.sendBudgetMs,
      ...(identity ? { authenticate: (call) => identity.clusterOf(call) } : {}),
    });
    if (identity)
      identity.authority.onRevoke(
        (cluster) => this.stream?.closeCluster(cluster, 'cluster identity revoked') ?? 0,
      );
    // Reading fleet status needs a token or the admin certificate; --insecure has no identities.
    const access = identity
      ? new ReadAccess(identity.authority, this.log.child({ [LogFields.component]: 'access' }))
      : undefined;
    // Revoking a person or a token closes their open watches at once (gRPC and HTTP).
    if (identity && access) {
      identity.authority.admins.onRevoke((name) =>
        access.closeStreams('certificate', name, `administrator "${name}" has been revoked`),
      );
      identity.authority.apiTokens.onRevoke((name) =>
        access.closeStreams('token', name, `API token "${name}" has been revoked`),
      );
    }
    this.grpc = await startGrpcServer(
      cfg.grpc.listen.address,
      {
        agentStream: this.partition
          ? refusingWhile(this.stream.handlers(), () => this.partition?.refusal)
          : this.stream.handlers(),
        fleet: fleetServiceHandlers(this.status, this.history, access, this.rollouts, this.audit),
        ...(identity ? { identity: identity.handlers } : {}),
      },
      identity?.tls,
    );
    // Events are folded onto the restored records only: the consumer resumes after what
    // this replica acked before, which the saved status holds, so folding before a slow
    // restore settled would build records the restore then has to merge into.
    void this.statusRestored.then(() => this.events.start());
    this.persistence.start();
    this.capabilitiesKv.start();
    this.http = await startHttpApi(
      cfg.http.listen.host,
      cfg.http.listen.port,
      {
        status: this.status,
        sources: { sources: () => this.sourceStatuses() },
        readiness: { check: () => this.readiness() },
        logger: this.log.child({ [LogFields.component]: 'api' }),
        history: this.history,
        metrics: this.metrics,
        webhooks: new WebhookHandler(
          (name) => this.webhookTarget(name),
          this.log.child({ [LogFields.component]: 'webhook' }),
        ),
        ...(access ? { access } : {}),
        capabilities: {
          reported: (cluster) => this.capabilities.get(cluster),
          defaults: () => cfg.render.defaultCapabilities,
        },
        rollouts: this.rollouts,
        audit: this.audit,
      },
      identity ? { ...identity.authority.servingPair, caPem: identity.authority.caPem } : undefined,
    );
    this.log.info(
      { grpc: this.grpc.port, http: this.http.port, sources: this.sources.length },
      'hub listening',
    );
    for (const entry of this.sources) {
      entry.source.onSnapshot((snap) => this.onSnapshot(entry, snap));
      // Served from its saved rendering, a source is fetched (and rendered, in most
      // restarts to the same states) once the agents dialling back have been served: the
      // fetch runs on this thread and the render takes the other core.
      if (entry.restored)
        void agentsBack.then(() => {
          if (!this.stopSignal.signal.aborted) entry.source.start();
        });
      else entry.source.start();
    }
  }

  // Revoked clusters' NATS keys are pushed to nats-server at every start and revocation.
  private async startNatsRevocation(
    authority: IdentityAuthority,
    accountSeed: string,
  ): Promise<void> {
    const cfg = this.config;
    const read = async (f: string, field: string): Promise<Buffer> =>
      readConfigFile(f, field, cfg.file);
    const publisher = new NatsRevocationPublisher({
      url: cfg.nats.url,
      ...natsTlsOf(cfg.nats),
      systemCreds: new Uint8Array(
        await read(cfg.nats.systemCredsFile as string, 'nats.systemCredsFile'),
      ),
      operatorSigningSeed: (
        await read(cfg.nats.operatorSigningKeyFile as string, 'nats.operatorSigningKeyFile')
      ).toString('utf8'),
      accountSeed,
      logger: this.log.child({ [LogFields.component]: 'nats-revocation' }),
    });
    this.natsRevocation = publisher;
    authority.setNatsRevoker(() => publisher.push());
    publisher.start(() => authority.natsRevocations());
  }

  // TLS and per-cluster identities are the default; --insecure is for development and
  // the demo only, and says so loudly at every start.
  private async startIdentity(token: string | undefined) {
    const cfg = this.config;
    // Read once here so a wrong path fails the start naming the field (the client re-reads it).
    if (cfg.nats.caFile) await readConfigFile(cfg.nats.caFile, 'nats.caFile', cfg.file);
    if (cfg.nats.credsFile)
      this.natsCreds = new Uint8Array(
        await readConfigFile(cfg.nats.credsFile, 'nats.credsFile', cfg.file),
      );
    const accountSeed = cfg.nats.accountSeedFile
      ? (await readConfigFile(cfg.nats.accountSeedFile, 'nats.accountSeedFile', cfg.file))
          .toString('utf8')
          .trim()
      : undefined;
    if (accountSeed && cfg.nats.systemCredsFile) {
      // Agents' connections NATS closes for breaking their limits are reported on the cluster.
      this.natsViolations = new NatsViolationWatch({
        url: cfg.nats.url,
        ...natsTlsOf(cfg.nats),
        systemCreds: new Uint8Array(
          await readConfigFile(cfg.nats.systemCredsFile, 'nats.systemCredsFile', cfg.file),
        ),
        accountSeed,
        logger: this.log.child({ [LogFields.component]: 'nats-violations' }),
        onViolation: (v) => this.status.noteCut(v.cluster, v.what, v.reason),
      });
      this.natsViolations.start();
    }
    if (cfg.insecure) {
      this.log.warn(
        'INSECURE MODE: gRPC and HTTP are plaintext and agents have no per-cluster identity; never use this outside development',
      );
      if (token === undefined)
        this.log.warn('auth.tokenFile is not set: any agent may connect (development only)');
      return undefined;
    }
    const authority = new IdentityAuthority({
      stateDir: cfg.identity.stateDir,
      hosts: cfg.identity.hosts,
      tokenTtlMs: cfg.identity.tokenTtlMs,
      certValidityMs: cfg.identity.certValidityMs,
      logger: this.log.child({ [LogFields.component]: 'identity' }),
      ...(cfg.status.replicaId ? { records: this.replicaIdentityRecords() } : {}),
    });
    this.identity = authority;
    await authority.start();
    if (accountSeed && cfg.nats.systemCredsFile && cfg.nats.operatorSigningKeyFile)
      await this.startNatsRevocation(authority, accountSeed);
    return {
      authority,
      handlers: identityHandlers({
        authority,
        audit: this.audit,
        logger: this.log.child({ [LogFields.component]: 'identity' }),
        // The NATS user JWT lives as long as the certificate and is renewed with it.
        ...(accountSeed
          ? {
              natsJwt: async (cluster: string, key: string) =>
                agentUserJwt(accountSeed, cluster, key, Date.now() + cfg.identity.certValidityMs),
            }
          : {}),
      }),
      tls: { caPem: authority.caPem, ...authority.servingPair },
      clusterOf: (call: Parameters<typeof peerOf>[0]): string => {
        const peer = peerOf(call, authority);
        if (peer.role !== 'cluster')
          throw new Error(`certificate role ${peer.role} cannot open an agent stream`);
        return peer.name;
      },
    };
  }

  // Replicas share their identity records in JetStream KV (identity/kv-records.ts); a
  // replica cannot check any certificate without them, so its start waits for NATS.
  private replicaIdentityRecords(): KvIdentityRecords {
    const cfg = this.config;
    this.nats.start();
    return new KvIdentityRecords({
      connection: () => this.nats.connection(),
      hubId: cfg.status.hubId,
      replicas: cfg.nats.replicas,
      logger: this.log.child({ [LogFields.component]: 'identity' }),
      importFrom: join(cfg.identity.stateDir, 'identity-state.json'),
    });
  }

  // A restarted hub serves the persisted status at once; NATS being down must not
  // delay the start, so the restore gets a short window and is skipped after it.
  private async restoreStatus(): Promise<void> {
    const RESTORE_WINDOW_MS = 2_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), RESTORE_WINDOW_MS);
    });
    // Settles into a value either way: a restore finishing after the window must not
    // become an unhandled rejection (it still adds the records it finds).
    const restoring = this.persistence.restore().then(
      (n) => ({ n }),
      (err: unknown) => ({ err }),
    );
    this.statusRestored = restoring.then(() => undefined);
    const outcome = await Promise.race([restoring, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout')
      this.log.warn('NATS not reachable at start: serving status without history for now');
    else if ('err' in outcome)
      this.log.warn({ err: errorMessage(outcome.err) }, 'restoring status failed: starting empty');
    else this.log.info({ clusters: outcome.n }, 'status restored');
  }

  // Like restoreStatus: bounded by a short window, so NATS being down never delays the
  // start; records found later still count (and re-render, as any change does).
  private async restoreCapabilities(): Promise<void> {
    const RESTORE_WINDOW_MS = 2_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), RESTORE_WINDOW_MS);
    });
    const restoring = this.capabilitiesKv.restore().then(
      (n) => ({ n }),
      (err: unknown) => ({ err }),
    );
    const outcome = await Promise.race([restoring, timeout]);
    clearTimeout(timer);
    if (outcome === 'timeout')
      this.log.warn('NATS not reachable at start: rendering with default capabilities for now');
    else if ('err' in outcome)
      this.log.warn({ err: errorMessage(outcome.err) }, 'restoring capabilities failed');
    else this.log.info({ clusters: outcome.n }, 'capabilities restored');
  }

  // Reports arriving together (many agents reconnecting) share one re-render; each source
  // renders its last snapshot again, and only what the new capabilities change is sent.
  private scheduleRerender(): void {
    if (this.rerenderTimer || this.stateValue === 'stopping' || this.stateValue === 'stopped')
      return;
    this.rerenderTimer = setTimeout(() => {
      this.rerenderTimer = undefined;
      let rendering = false;
      for (const entry of this.sources)
        if (entry.snapshot) {
          rendering = true;
          void this.onSnapshot(entry, entry.snapshot);
        }
      // Nothing to render again (saved renderings only, Git not fetched yet): first states
      // held for a render go now rather than after the hold's timeout.
      if (!rendering) this.stream?.rendered();
    }, durations.capabilitiesRerenderDelay);
    this.rerenderTimer.unref();
  }

  // Rollout state must be read before rollout bundles are sent anywhere; until it is,
  // they are held (their clusters keep what they run) and the restore keeps retrying.
  private async restoreRollouts(): Promise<void> {
    // NATS did not answer within the status window: rollout bundles stay held while the
    // restore retries in the background, and the start does not wait another window.
    if (!this.nats.connected) {
      this.rollouts
        .restore()
        .catch((err: unknown) =>
          this.log.warn({ err: errorMessage(err) }, 'restoring rollouts failed'),
        );
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const window = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, durations.rolloutRestoreWindow);
    });
    await Promise.race([this.rollouts.restore(), window]);
    clearTimeout(timer);
  }

  // A source's webhook target; with replicas, a push fetched here is announced to the others.
  private webhookTarget(name: string): WebhookTarget | undefined {
    const target = this.sources.find((e) => e.source.name === name)?.source.webhook;
    const triggers = this.fetchTriggers;
    if (!target || !triggers) return target;
    return {
      url: target.url,
      secret: target.secret,
      followsPushedRef: (ref) => target.followsPushedRef(ref),
      triggerNow: () => {
        target.triggerNow();
        triggers.announce(name);
      },
    };
  }

  // To the webhooks: through the lease holder when replicas share the work.
  private alert(a: Alert): void {
    if (this.alerts) this.alerts.alert(a);
    else this.notifier?.alert(a);
  }

  // Every rollout transition goes to the history (and its stream, by the controller) and
  // the log; alerts and metrics follow in their modules.
  private rolloutTransitions(records: readonly HistoryRecord[]): void {
    for (const r of records) this.history.addRollout(r);
    this.metrics.rolloutTransitions(records);
    for (const a of rolloutAlerts(records)) this.alert(a);
    for (const r of records.slice(0, 20))
      this.log.info(
        {
          [LogFields.bundle]: r.bundle,
          rollout: r.rollout,
          ...(r.cluster ? { [LogFields.cluster]: r.cluster } : {}),
          from: r.from,
          to: r.to,
        },
        r.message,
      );
  }

  // The event log is rebuilt from the stream in the background: queries answer from
  // what has been replayed so far, and the live consumer adds to it meanwhile.
  private async replayHistory(): Promise<void> {
    const log = this.log.child({ [LogFields.component]: 'history' });
    try {
      const since = Date.now() - this.config.status.history.retentionMs;
      const n = await replayHistory(
        await this.nats.connection(),
        since,
        (k, e) => this.history.add(k, e),
        log,
      );
      log.info({ events: n }, 'history replayed');
      const records = await this.rolloutHistory.replay(since, log);
      for (const r of records) this.history.addRollout(r);
      log.info({ transitions: records.length }, 'rollout history replayed');
      const audits = await this.auditStream.replay(since, log);
      for (const r of audits) this.history.addAudit(r);
      log.info({ records: audits.length }, 'audit log replayed');
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'history replay failed: history starts from now');
    } finally {
      this.historyLoading = false;
    }
  }

  private async onSnapshot(entry: SourceEntry<S>, snap: S, refreshCharts = false): Promise<void> {
    const log = this.log.child({
      [LogFields.source]: entry.source.name,
      [LogFields.revision]: snap.revision,
    });
    entry.snapshot = snap;
    const renders = (entry.renders ??= { started: 0, taken: 0 });
    const seq = ++renders.started;
    // Read with the snapshot the renderer gets: what this rendering knows of capabilities.
    const capabilitiesVersion = this.capabilities.version;
    let rendering: FleetRendering;
    try {
      rendering = await this.parts.renderer.render(snap, {
        capabilities: this.capabilities.snapshot(),
        ...(refreshCharts ? { refreshCharts } : {}),
      });
      // A newer render (later snapshot or capabilities) already finished: keep it.
      if (seq < renders.taken) return;
      renders.taken = seq;
      entry.capabilitiesVersion = capabilitiesVersion;
    } catch (err) {
      // A render that failed still ran with these capabilities: waiting longer gives nothing better.
      entry.capabilitiesVersion = Math.max(entry.capabilitiesVersion ?? -1, capabilitiesVersion);
      // The last good rendering keeps being served; a bad commit never takes the fleet down.
      entry.renderError = errorMessage(err);
      log.error({ err: entry.renderError }, 'render failed, serving the last good desired states');
      // Every cluster of the source is then behind this commit: status must say so.
      entry.renderThrew = { revision: snap.revision, message: entry.renderError };
      if (entry.rendering) this.publish();
      return;
    }
    entry.rendering = rendering;
    entry.restored = undefined;
    entry.saved.save(rendering);
    entry.renderThrew = undefined;
    entry.renderErrors = sourceRenderErrors(rendering);
    const charts = sourceCharts(rendering.clusters);
    // A new version within a range is a new desired state at the same commit: say so.
    for (const c of chartChanges(entry.charts ?? [], charts))
      log.info(
        { [LogFields.bundle]: c.bundle, chart: c.chart, from: c.from, to: c.to },
        'chart version changed: new desired state',
      );
    entry.charts = charts;
    entry.renderError = rendering.errors
      .map((e) => e.message)
      .slice(0, 5)
      .join('; ');
    this.publish();
    log.info({ clusters: rendering.clusters.size, errors: rendering.errors.length }, 'rendered');
    for (const e of rendering.errors.slice(0, 20)) log.warn({ err: e.message }, 'render error');
  }

  // Merges every source's rendering; a cluster declared by two sources keeps the first.
  // The merged head goes to the rollout controller, and is delivered gated by it.
  private publish(): void {
    const states = new Map<string, DesiredState>();
    const labels = new Map<string, Record<string, string>>();
    const failures = new Map<string, RenderFailureRecord[]>();
    const plans = new Map<string, RolloutPlan>();
    for (const entry of this.sources) {
      const { rendering, source } = entry;
      if (!rendering) continue;
      for (const [bundle, plan] of rendering.rollouts ?? []) plans.set(bundle, plan);
      for (const [name, l] of rendering.labels) {
        if (labels.has(name)) {
          this.log.warn(
            { [LogFields.cluster]: name, [LogFields.source]: source.name },
            'cluster declared by two sources, ignored here',
          );
          continue;
        }
        labels.set(name, l);
        const state = rendering.clusters.get(name);
        if (state) states.set(name, state);
        const failed = failuresOf(entry, name, state);
        if (failed.length > 0) failures.set(name, failed);
      }
    }
    const rendered = this.sources.map((e) => ({
      clusters: e.rendering?.labels,
      capabilitiesVersion: e.capabilitiesVersion,
    }));
    this.head = { states, labels, failures, renderedWith: renderedWith(rendered) };
    this.rollouts.setHead(states, plans);
    this.deliver();
  }

  // The head as rollouts admit it goes to the desired-state store (and so to agents),
  // and to status, which tells the head from what each cluster is held at.
  private deliver(): void {
    const head = this.head;
    if (!head) return;
    const gated = this.rollouts.gate(head.states);
    const states = gated.states;
    const changed = this.desired.replace(states, head.renderedWith);
    this.rollouts.delivered(states);
    this.stream?.rendered();
    const fleet: FleetEntry[] = [...head.labels].map(([name, l]) => {
      const s = states.get(name);
      const bundles = s?.bundles.map((b) => ({ name: b.name, digest: b.digest, chart: b.chart }));
      return {
        name,
        labels: l,
        desired: s ? { revision: s.revision, digest: s.digest, bundles } : undefined,
        renderFailures: head.failures.get(name) ?? [],
        rolloutHolds: gated.holds.get(name) ?? [],
      };
    });
    const fresh = this.status.setFleet(fleet);
    // Once per bundle and revision: setFleet reports only failures no record held yet.
    for (const a of renderFailureAlerts(fresh)) this.alert(a);
    if (fresh.length > 0)
      this.log.warn(
        { failures: fresh.length, clusters: head.failures.size },
        'bundles failed to render: their clusters are Failed',
      );
    this.log.info(
      { clusters: fleet.length, changed: changed.length, held: gated.holds.size },
      'desired states updated',
    );
    for (const name of changed.slice(0, 5)) {
      const s = states.get(name);
      this.log.debug(
        { [LogFields.cluster]: name, [LogFields.digest]: s ? shortDigest(s.digest) : '' },
        'desired state changed',
      );
    }
  }

  private sourceStatuses(): SourceStatus[] {
    return this.sources.map((entry) => {
      const { source, url, branch, rendering, renderError, renderErrors, renderThrew } = entry;
      const st = source.status();
      return {
        name: source.name,
        url: url.replace(/\/\/[^@/]*@/, '//'),
        branch,
        revision: st.lastFetchedRevision ?? '',
        lastFetched: st.lastFetchAt ? st.lastFetchAt.toISOString() : null,
        renderedRevision: rendering?.revision ?? '',
        ...(entry.restored ? { restoredFrom: entry.restored.savedAt.toISOString() } : {}),
        error: st.lastError ?? renderError,
        lastError: st.lastError ?? renderThrew?.message ?? '',
        renderErrors: renderErrors.groups,
        renderErrorCount: renderErrors.total,
        ...(st.ref ? { ref: st.ref } : {}),
        ...(st.lastErrorCode ? { errorCode: st.lastErrorCode } : {}),
        ...(st.lastErrorAt ? { errorAt: st.lastErrorAt.toISOString() } : {}),
        ...(st.rejectedRevision ? { rejectedRevision: st.rejectedRevision } : {}),
        ...(entry.charts && entry.charts.length > 0 ? { charts: entry.charts } : {}),
      };
    });
  }

  // Finds where kustomize, helm and sops will run (the renderers use the same result),
  // says it once, and shows it as a metric: a weaker sandbox than "user" is a warning.
  private startSandbox(): void {
    const render = this.config.render;
    const sandbox = sandboxFor(render.sandbox, renderProgramsOf(render));
    this.metrics.renderSandbox(sandbox.level);
    const fields = {
      [LogFields.component]: 'render',
      sandbox: sandbox.level,
      asked: render.sandbox.mode,
      ...(sandbox.uid !== undefined ? { uid: sandbox.uid, gid: sandbox.gid } : {}),
    };
    // With a renderer only sops runs here: it parses ciphertext with a key the hub holds anyway.
    const tools = render.remote ? 'sops runs' : 'kustomize, helm and sops run';
    if (sandbox.level === 'user') this.log.info(fields, `${tools} as another user without network`);
    else
      this.log.warn(
        { ...fields, why: sandbox.weaker },
        sandbox.level === 'network'
          ? `render sandbox is weaker: ${tools} without network but as the hub user, so they could read files the hub can read`
          : `render sandbox is weaker: ${tools} as the hub user with network access to local addresses`,
      );
  }

  // render.remote: the renderer is probed; while it is away the hub is degraded, and when
  // it is back every source renders again (bundles that failed for want of it get theirs).
  private startRendererLink(): void {
    const remote = this.config.render.remote;
    if (!remote) return;
    checkRemoteFiles(remote);
    this.log.info(
      { [LogFields.component]: 'render', address: remote.address },
      'kustomize and helm run on the renderer; sops here',
    );
    this.rendererLink = new RendererLink(remote, {
      logger: this.log.child({ [LogFields.component]: 'render' }),
      onBack: () => this.scheduleRerender(),
    });
    this.rendererLink.start();
  }

  // Ready = able to serve agents and reads: running, and a rendering (rendered, or saved
  // before the restart) for every source. Git and NATS failing only degrade the hub.
  private readiness(): { ready: boolean; reasons: string[]; degraded: Degradation[] } {
    const reasons: string[] = [];
    if (this.stateValue !== 'running') reasons.push(`hub is ${this.stateValue}`);
    for (const s of this.sources)
      if (!s.rendering)
        reasons.push(
          `source ${s.source.name} has nothing to serve yet (not rendered, no saved rendering)`,
        );
    // A replica cut from NATS sends its agents to the others (lease/nats-partition.ts).
    const refusal = this.partition?.refusal;
    if (refusal) reasons.push(`agents refused: ${refusal}`);
    return { ready: reasons.length === 0, reasons, degraded: this.degraded() };
  }

  // What the hub serves without, and what it serves instead (GET /api/v1/hub, the metric).
  private degraded(): Degradation[] {
    const out: Degradation[] = [];
    for (const entry of this.sources) {
      const name = entry.source.name;
      const st = entry.source.status();
      const r = entry.rendering;
      const serving = r
        ? `serving revision ${r.revision.slice(0, 12)}${entry.restored ? ' saved before the restart' : ''}`
        : 'nothing to serve';
      const since = st.failingSince ?? st.lastErrorAt;
      if (st.lastError && since) {
        const what = st.lastErrorCode === 'UNAVAILABLE' ? 'unreachable' : 'failing';
        out.push({
          reason: 'git',
          source: name,
          since: since.toISOString(),
          message: `Git source ${name} ${what} since ${since.toISOString()}: ${serving} (${st.lastError})`,
        });
      } else if (entry.restored)
        out.push({
          reason: 'rendering',
          source: name,
          since: (this.startedAt ?? new Date()).toISOString(),
          message: `source ${name}: ${serving} until the render of the fetched revision finishes`,
        });
    }
    const away = this.rendererLink?.downSince;
    if (away)
      out.push({
        reason: 'renderer',
        since: away.toISOString(),
        message: `renderer ${this.config.render.remote?.address ?? ''} unreachable since ${away.toISOString()}: Kustomize and Helm bundles that changed keep their last rendering (${this.rendererLink?.lastError ?? ''})`,
      });
    const down = this.nats.downSince;
    // While NATS is down the replay waits for it, and the NATS line below says so.
    if (this.historyLoading && this.stateValue === 'running' && !down)
      out.push({
        reason: 'history',
        since: (this.startedAt ?? new Date()).toISOString(),
        message: `history loading: the events of the retention period are being replayed (${this.history.size} entries so far); until then history shows only part of them`,
      });
    if (down)
      out.push({
        reason: 'nats',
        since: down.toISOString(),
        message: `NATS unreachable since ${down.toISOString()}: agents' events are not folded, status and rollouts are not saved${this.partition?.outage ? `; ${this.partition.outage}` : ''}`,
      });
    return out;
  }

  // Reads each source's saved rendering and serves it until that source renders.
  private async restoreRenderings(): Promise<void> {
    let restored = 0;
    await Promise.all(
      this.sources.map(async (entry) => {
        const loaded = await entry.saved.load();
        if (!loaded || entry.rendering) return;
        const rendering = loaded.rendering;
        entry.rendering = rendering;
        entry.restored = { savedAt: loaded.savedAt };
        entry.renderErrors = sourceRenderErrors(rendering);
        entry.charts = sourceCharts(rendering.clusters);
        entry.renderError = rendering.errors
          .map((e) => e.message)
          .slice(0, 5)
          .join('; ');
        restored++;
        this.log.info(
          {
            [LogFields.source]: entry.source.name,
            [LogFields.revision]: rendering.revision,
            savedAt: loaded.savedAt.toISOString(),
            clusters: rendering.clusters.size,
          },
          'serving the rendering saved before the restart until the next render',
        );
      }),
    );
    if (restored > 0) this.publish();
  }

  /** Stops every module in reverse order; errors are logged, never thrown, so shutdown completes. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.stateValue === 'stopping' || this.stateValue === 'stopped') return;
    this.transition('stopping');
    this.stopSignal.abort();
    const began = performance.now();
    // Where a shutdown's time goes, one line at the end (steps over 50 ms).
    const slow: Record<string, number> = {};
    const step = async (what: string, fn: () => Promise<void> | void): Promise<void> => {
      const t = performance.now();
      try {
        await fn();
      } catch (err) {
        this.log.warn(
          { err: errorMessage(err), code: err instanceof FlotillaError ? err.code : undefined },
          `stopping ${what} failed`,
        );
      } finally {
        const ms = Math.round(performance.now() - t);
        if (ms >= 50) slow[what] = ms;
      }
    };
    await Promise.all(
      this.sources.map((s) => step(`source ${s.source.name}`, () => s.source.stop())),
    );
    await Promise.all(
      this.sources.map((s) =>
        step(`saving the rendering of ${s.source.name}`, () => s.saved.flush()),
      ),
    );
    await step('HTTP API', () => this.http?.stop());
    this.partition?.stop();
    await step('fetch triggers', () => this.fetchTriggers?.stop());
    await step('agent streams', () => this.stream?.stop());
    // Every agent stream has its status (and the redial pace) already: the server waits
    // briefly for clients to close, while the sessions' ends are published.
    await Promise.all([
      step('gRPC server', () => this.grpc?.stop(Math.min(graceMs, durations.grpcShutdownDrain))),
      step('session events', () => this.sessionEvents.stop(SESSION_EVENTS_STOP_GRACE_MS)),
    ]);
    clearInterval(this.sweeper);
    clearTimeout(this.rerenderTimer);
    this.rendererLink?.stop();
    clearInterval(this.chartsTimer);
    await step('events consumer', () => this.events.stop());
    this.alerts?.stop();
    await step('notifier', () => this.notifier?.stop());
    await step('rollout action forwarding', () => this.actionForwarding?.stop());
    await step('rollouts', () => this.rollouts.stop());
    // A last attempt to store audit records still waiting for NATS.
    await step('audit log', async () => {
      await this.audit.flush();
      this.audit.stop();
    });
    await step('status persistence', () => this.persistence.stop());
    // Released after the last save, so the next holder starts from it.
    await step('lease', () => this.lease?.stop());
    await step('capabilities persistence', () => this.capabilitiesKv.stop());
    await step('NATS revocation', () => this.natsRevocation?.stop());
    await step('identity records', () => this.identity?.stop());
    await step('NATS violations', () => this.natsViolations?.stop());
    await step('NATS', () => this.nats.stop());
    await step('renderer', () => this.parts.renderer.stop?.());
    this.log.info({ ms: Math.round(performance.now() - began), slowSteps: slow }, 'hub stopped');
    this.transition('stopped');
  }
}

/** Directory under cacheDir keeping helm's output by its inputs (render/kept-output.ts). */
export const HELM_OUTPUT_DIR = '.helm-output';

/** Directory under cacheDir holding each source's last good rendering (`<source>.json.gz`). */
export const SAVED_RENDERINGS_DIR = '.rendered';

/** A replica's status consumer is deleted by NATS after a day without its replica (24 h). */
export const REPLICA_CONSUMER_INACTIVE_MS = 86_400_000;

/**
 * The status consumer's durable name: flotilla-hub-status-<hubId>, and -<replicaId> after
 * it when the hub is one of several replicas, so that each folds every event into its own
 * view and no replica ever recreates another's consumer.
 */
export function statusDurable(status: { hubId: string; replicaId?: string | undefined }): string {
  const base = `${STATUS_CONSUMER}-${status.hubId}`;
  return status.replicaId ? `${base}-${status.replicaId}` : base;
}

// A cluster's render failures as status keeps them: the renderer's, or the whole state's
// when the render itself threw (every cluster then stays at what it was served).
function failuresOf(
  entry: {
    rendering: FleetRendering | undefined;
    renderThrew: SourceEntry<FleetSnapshot>['renderThrew'];
  },
  cluster: string,
  state: DesiredState | undefined,
): RenderFailureRecord[] {
  if (entry.renderThrew) {
    const { revision, message } = entry.renderThrew;
    return [renderFailureRecord('', revision, [message], state?.revision ?? '')];
  }
  const r = entry.rendering;
  return (r?.failures?.get(cluster) ?? [])
    .slice(0, MAX_RENDER_FAILURES)
    .map((f) => renderFailureRecord(f.bundle, r?.revision ?? '', f.messages, f.servingRevision));
}

// ─── Adapter to the real source and renderer (for the lead) ──────────────────────────
// GitSource and FleetRenderer are written by the source/render engineer; this is the
// only place that knows their shapes.

/** The production parts: a GitSource per configured source, and sourceRenderers. */
export function realHubParts(logger: Logger): HubParts<SourceSnapshot> {
  // Sources are created before any snapshot is rendered: their config carries render's.
  let hubConfig: HubConfig | undefined;
  return {
    logger,
    createSource: async (cfg, index, log) => {
      hubConfig = cfg;
      return createGitSource(cfg, index, log);
    },
    renderer: sourceRenderers(logger, () => hubConfig),
  };
}

/**
 * The hub's renderer: per source, a FleetRenderer in its own worker thread (its caches
 * live there), so rendering a commit never blocks agent streams or queries.
 */
export function sourceRenderers(
  logger: Logger,
  config: () => Pick<HubConfig, 'render' | 'prune' | 'charts' | 'cacheDir'> | undefined,
): HubRenderer<SourceSnapshot> {
  const renderers = new Map<string, WorkerRenderer>();
  return {
    stop: async () => {
      await Promise.all([...renderers.values()].map((r) => r.stop()));
    },
    render: async (snap, inputs) => {
      let renderer = renderers.get(snap.source);
      if (!renderer) {
        const cfg = config();
        renderer = new WorkerRenderer({
          ...(cfg
            ? {
                ...renderOptionsOf(cfg.render),
                toolSandbox: sandboxFor(cfg.render.sandbox, renderProgramsOf(cfg.render)),
                maxPruneShare: cfg.prune.maxShare,
                maxHeapBytes: cfg.render.workerMaxHeapBytes,
                chartSettings: cfg.charts,
                helmOutputDir: join(cfg.cacheDir, HELM_OUTPUT_DIR),
              }
            : {}),
          logger: logger.child({
            [LogFields.component]: 'render',
            [LogFields.source]: snap.source,
          }),
        });
        renderers.set(snap.source, renderer);
      }
      const result = await renderer.render(await snap.readTree(), snap.revision, inputs);
      // A cluster whose file is broken keeps its previous state; it has no labels this time.
      const labels = new Map(result.labels);
      for (const name of [...result.clusters.keys(), ...result.brokenClusters])
        if (!labels.has(name)) labels.set(name, {});
      return {
        revision: result.revision,
        clusters: result.clusters,
        labels,
        errors: result.errors,
        failures: result.failures,
        rollouts: result.rollouts,
        ...(result.resolvesCharts ? { resolvesCharts: true } : {}),
      };
    },
  };
}
