// The hub's metrics, in one place: what /metrics shows and who feeds it.
//   flotilla_clusters{state}                      clusters by state (computed at scrape)
//   flotilla_render_failures                      bundle x cluster pairs (and whole clusters) that failed to render (at scrape)
//   flotilla_stream_sessions                      agents connected now
//   flotilla_stream_sessions_total                sessions opened since start
//   flotilla_events_total{kind,outcome}           agent and session events consumed (folded|stale|ignored|malformed)
//   flotilla_drift_events_total                   drift-detected events folded
//   flotilla_apply_duration_seconds               apply durations the agents reported
//   flotilla_event_lag_seconds                    event time to fold time (histogram)
//   flotilla_session_events_total{outcome}        session events this hub recorded (published|dropped)
//   flotilla_notifications_total{webhook,outcome} webhook posts (sent|failed|deduplicated|rate_limited)
//   flotilla_rollouts{phase}                      each bundle's latest rollout, by phase (at scrape)
//   flotilla_rollout_transitions_total{scope,to}  rollout transitions (scope rollout|cluster)
//   flotilla_rollout_stage_duration_seconds{stage} from a stage starting to it completing (histogram)
//   flotilla_rollout_decision_seconds             one decision tick over rollout bundles (histogram)
//   flotilla_input_cut_total{cluster,what}       agent input cut at the hub's edge, records shrunk or not saved
//   flotilla_render_sandbox{level}                1 for the sandbox kustomize/helm/sops run in (user|network|none)
//   flotilla_hub_degraded{reason,source}          1 while a dependency fails and the hub serves without it (git|rendering|nats|renderer|history)
import type { AppliedData, EventKind, FlotillaEvent } from '@flotilla/common';
import type { Ack__Output } from '@flotilla/proto';
import type { HelloSummary, SessionObserver } from '../stream/types.js';
import type { ClusterStatus } from '../status/model.js';
import { Counter, Gauge, Histogram, Registry } from './registry.js';
import type { SandboxLevel } from '../render/sandbox.js';

/** Buckets of flotilla_event_lag_seconds: 10 ms to 60 s. */
export const EVENT_LAG_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Buckets of flotilla_rollout_decision_seconds: 1 ms to 1 s. */
export const DECISION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** Buckets of flotilla_rollout_stage_duration_seconds: 1 s to 1 day. */
export const STAGE_DURATION_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 14_400, 86_400];

/** A rollout transition, as the metrics count it (RolloutTransitionRecord fits). */
export interface RolloutTransitionFact {
  atMs: number;
  cluster: string;
  rollout: string;
  stage: number;
  to: string;
}

/** What the metrics read from the status model. */
export interface ClusterLister {
  list(): ClusterStatus[];
}

/** The hub's metric registry and the hooks that feed it. */
export class HubMetrics {
  readonly registry = new Registry();
  private readonly events: Counter;
  private readonly drift: Counter;
  private readonly applyDuration: Histogram;
  private readonly lag: Histogram;
  private readonly sessionsTotal: Counter;
  private readonly sessionEvents: Counter;
  private readonly notifications: Counter;
  private readonly rolloutTransitionsTotal: Counter;
  private readonly stageDuration: Histogram;
  private readonly decision: Histogram;
  private degraded: (() => { reason: string; source?: string | undefined }[]) | undefined;
  private history: (() => { entries: number; bytes: number }) | undefined;
  /** When each running stage started ("<rollout>/<stage>" → ms), for its duration. */
  private readonly stageStarts = new Map<string, number>();
  private readonly cuts: Counter;
  private sandbox: SandboxLevel | undefined;

  constructor(
    status: ClusterLister,
    private readonly now: () => number = Date.now,
  ) {
    const r = this.registry;
    r.add(
      new Gauge('flotilla_clusters', 'Clusters by state.', () => {
        const counts = new Map<string, number>();
        for (const c of status.list()) counts.set(c.state, (counts.get(c.state) ?? 0) + 1);
        return [...counts].map(([state, n]) => [{ state }, n] as [Record<string, string>, number]);
      }),
    );
    r.add(
      new Gauge(
        'flotilla_render_failures',
        'Bundles failed to render at the current revision, counted per cluster (a whole cluster counts once).',
        () => [[{}, status.list().reduce((n, c) => n + (c.renderFailures?.length ?? 0), 0)]],
      ),
    );
    r.add(
      new Gauge(
        'flotilla_render_sandbox',
        'Where kustomize, helm and sops run: 1 for the level in use (user: another user without network; network: no network; none).',
        () =>
          this.sandbox === undefined
            ? []
            : (['user', 'network', 'none'] as const).map(
                (level) =>
                  [{ level }, level === this.sandbox ? 1 : 0] as [Record<string, string>, number],
              ),
      ),
    );
    r.add(
      new Gauge(
        'flotilla_hub_degraded',
        'What the hub serves without: 1 per failing dependency (reason git or rendering with the source, nats, or renderer); nats is always present.',
        () => {
          const list = this.degraded?.() ?? [];
          const out: [Record<string, string>, number][] = list.map((d) => [
            { reason: d.reason, ...(d.source ? { source: d.source } : {}) },
            1,
          ]);
          if (this.degraded && !list.some((d) => d.reason === 'nats'))
            out.push([{ reason: 'nats' }, 0]);
          return out;
        },
      ),
    );
    // The process's memory, so growth can be told apart: V8's heap (where the status and
    // history live) from the rest of the RSS (buffers, code, the allocator's slack).
    const memory: [string, string, (m: NodeJS.MemoryUsage) => number][] = [
      ['process_resident_memory_bytes', 'Resident set size of the hub process.', (m) => m.rss],
      ['nodejs_heap_size_used_bytes', 'V8 heap in use.', (m) => m.heapUsed],
      ['nodejs_heap_size_total_bytes', 'V8 heap reserved.', (m) => m.heapTotal],
      [
        'nodejs_external_memory_bytes',
        'Memory of C++ objects bound to JavaScript ones (buffers).',
        (m) => m.external,
      ],
    ];
    for (const [name, help, pick] of memory)
      r.add(new Gauge(name, help, () => [[{}, pick(process.memoryUsage())]]));
    r.add(
      new Gauge(
        'flotilla_history_entries',
        'Entries the history holds (bounded by retention, count and bytes).',
        () => (this.history ? [[{}, this.history().entries]] : []),
      ),
    );
    r.add(
      new Gauge(
        'flotilla_history_bytes',
        "Heap bytes of the history's entries as accounted (history-entry.ts), bounded by the history's byte caps.",
        () => (this.history ? [[{}, this.history().bytes]] : []),
      ),
    );
    r.add(
      new Gauge('flotilla_stream_sessions', 'Agents connected now.', () => [
        [{}, status.list().filter((c) => c.connected).length],
      ]),
    );
    this.sessionsTotal = r.add(
      new Counter('flotilla_stream_sessions_total', 'Agent sessions opened since the hub started.'),
    );
    this.events = r.add(
      new Counter('flotilla_events_total', 'Agent events consumed, by kind and outcome.'),
    );
    this.drift = r.add(new Counter('flotilla_drift_events_total', 'Drift-detected events folded.'));
    this.applyDuration = r.add(
      new Histogram('flotilla_apply_duration_seconds', 'Apply durations reported by agents.'),
    );
    this.lag = r.add(
      new Histogram(
        'flotilla_event_lag_seconds',
        'Time from an event being emitted to the hub folding it.',
        EVENT_LAG_BUCKETS,
      ),
    );
    this.sessionEvents = r.add(
      new Counter(
        'flotilla_session_events_total',
        'Session start and end events this hub recorded, by outcome (published or dropped).',
      ),
    );
    // Both series exist from the start, so an alert on drops has something to compare.
    for (const outcome of ['published', 'dropped']) this.sessionEvents.inc({ outcome }, 0);
    this.notifications = r.add(
      new Counter('flotilla_notifications_total', 'Webhook notifications, by webhook and outcome.'),
    );
    this.cuts = r.add(
      new Counter(
        'flotilla_input_cut_total',
        "Parts of a cluster's input cut at the hub's edge (what: the field), status records shrunk (status.record) or not saved (status.save).",
      ),
    );
    this.rolloutTransitionsTotal = r.add(
      new Counter(
        'flotilla_rollout_transitions_total',
        'Rollout transitions, by scope (rollout or cluster) and the phase or event they went to.',
      ),
    );
    this.stageDuration = r.add(
      new Histogram(
        'flotilla_rollout_stage_duration_seconds',
        'Time from a rollout stage starting to it completing, by stage index.',
        STAGE_DURATION_BUCKETS,
      ),
    );
    this.decision = r.add(
      new Histogram(
        'flotilla_rollout_decision_seconds',
        'Time one decision over every bundle with a rollout strategy took (saving aside).',
        DECISION_BUCKETS,
      ),
    );
  }

  /** Records one rollout decision's duration. */
  rolloutDecision(ms: number): void {
    this.decision.observe({}, ms / 1000);
  }

  /** Adds flotilla_rollouts{phase}, computed at scrape from each bundle's latest rollout. */
  observeRollouts(list: () => readonly { phase: string }[]): void {
    this.registry.add(
      new Gauge('flotilla_rollouts', "Each bundle's latest rollout, by phase.", () => {
        const counts = new Map<string, number>();
        for (const r of list()) counts.set(r.phase, (counts.get(r.phase) ?? 0) + 1);
        return [...counts].map(([phase, n]) => [{ phase }, n] as [Record<string, string>, number]);
      }),
    );
  }

  /** Counts rollout transitions and times stages from start to completion. */
  rolloutTransitions(records: readonly RolloutTransitionFact[]): void {
    for (const t of records) {
      this.rolloutTransitionsTotal.inc({ scope: t.cluster ? 'cluster' : 'rollout', to: t.to });
      const key = `${t.rollout}/${t.stage}`;
      if (t.to === 'StageStarted') {
        // Bounded: stages that never complete (superseded rollouts) are forgotten in bulk.
        if (this.stageStarts.size >= 10_000) this.stageStarts.clear();
        this.stageStarts.set(key, t.atMs);
      } else if (t.to === 'StageCompleted') {
        const started = this.stageStarts.get(key);
        this.stageStarts.delete(key);
        if (started !== undefined)
          this.stageDuration.observe({ stage: String(t.stage) }, (t.atMs - started) / 1000);
      }
    }
  }

  /** The render sandbox found at start (flotilla_render_sandbox). */
  renderSandbox(level: SandboxLevel): void {
    this.sandbox = level;
  }

  /** Counts one cut of a cluster's input (only misbehaving clusters get a series). */
  inputCut(cluster: string, what: string): void {
    this.cuts.inc({ cluster, what });
  }

  /** Counts one consumed event and what folding it did. */
  eventConsumed(kind: EventKind, event: FlotillaEvent, outcome: string): void {
    this.events.inc({ kind, outcome });
    if (outcome !== 'folded') return;
    this.lag.observe({}, Math.max(0, (this.now() - Date.parse(event.time)) / 1000));
    if (kind === 'drift-detected') this.drift.inc();
    if (kind === 'applied' || kind === 'apply-failed') {
      const ms = (event.data as Partial<AppliedData>).durationMs;
      if (typeof ms === 'number' && Number.isFinite(ms) && ms >= 0)
        this.applyDuration.observe({}, ms / 1000);
    }
  }

  /** Counts an event that could not be read. */
  eventMalformed(): void {
    this.events.inc({ kind: 'unknown', outcome: 'malformed' });
  }

  /** Counts one session event published or dropped. */
  sessionEvent(outcome: string): void {
    this.sessionEvents.inc({ outcome });
  }

  /** Counts one webhook notification outcome. */
  notification(webhook: string, outcome: string): void {
    this.notifications.inc({ webhook, outcome });
  }

  /** Wraps a session observer so opened sessions are counted. */
  observeSessions(inner: SessionObserver): SessionObserver {
    return {
      connected: (cluster: string, session: string, hello: HelloSummary) => {
        this.sessionsTotal.inc();
        inner.connected(cluster, session, hello);
      },
      seen: (cluster: string, session: string, agentClockMs?: number) =>
        inner.seen(cluster, session, agentClockMs),
      acked: (cluster: string, ack: Ack__Output) => inner.acked(cluster, ack),
      disconnected: (cluster: string, session: string, reason: string) =>
        inner.disconnected(cluster, session, reason),
    };
  }

  /** The exposition text. */
  /** Where flotilla_hub_degraded reads what is degraded (the hub's readiness). */
  degradedFrom(list: () => { reason: string; source?: string | undefined }[]): void {
    this.degraded = list;
  }

  /** Where the history gauges read from (none until set). */
  historyFrom(read: () => { entries: number; bytes: number }): void {
    this.history = read;
  }

  render(): string {
    return this.registry.render();
  }
}
