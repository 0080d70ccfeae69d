// The hub's metrics, in one place: what /metrics shows and who feeds it.
//   flotilla_clusters{state}                      clusters by state (computed at scrape)
//   flotilla_stream_sessions                      agents connected now
//   flotilla_stream_sessions_total                sessions opened since start
//   flotilla_events_total{kind,outcome}           agent events consumed (folded|stale|ignored|malformed)
//   flotilla_drift_events_total                   drift-detected events folded
//   flotilla_apply_duration_seconds               apply durations the agents reported
//   flotilla_event_lag_seconds                    event time to fold time, last event
//   flotilla_notifications_total{webhook,outcome} webhook posts (sent|failed|deduplicated|rate_limited)
import type { AppliedData, EventKind, FlotillaEvent } from '@flotilla/common';
import type { Ack__Output, Hello__Output } from '@flotilla/proto';
import type { SessionObserver } from '../stream/types.js';
import type { ClusterStatus } from '../status/model.js';
import { Counter, Gauge, Histogram, Registry } from './registry.js';

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
  private readonly lag: Gauge;
  private readonly sessionsTotal: Counter;
  private readonly notifications: Counter;

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
      new Gauge(
        'flotilla_event_lag_seconds',
        'Time from an event being emitted to the hub folding it (last event).',
      ),
    );
    this.notifications = r.add(
      new Counter('flotilla_notifications_total', 'Webhook notifications, by webhook and outcome.'),
    );
  }

  /** Counts one consumed event and what folding it did. */
  eventConsumed(kind: EventKind, event: FlotillaEvent, outcome: string): void {
    this.events.inc({ kind, outcome });
    if (outcome !== 'folded') return;
    this.lag.set({}, Math.max(0, (this.now() - Date.parse(event.time)) / 1000));
    if (kind === 'drift-detected') this.drift.inc();
    if (kind === 'applied' || kind === 'apply-failed') {
      const ms = (event.data as Partial<AppliedData>).durationMs;
      if (typeof ms === 'number' && ms >= 0) this.applyDuration.observe({}, ms / 1000);
    }
  }

  /** Counts an event that could not be read. */
  eventMalformed(): void {
    this.events.inc({ kind: 'unknown', outcome: 'malformed' });
  }

  /** Counts one webhook notification outcome. */
  notification(webhook: string, outcome: string): void {
    this.notifications.inc({ webhook, outcome });
  }

  /** Wraps a session observer so opened sessions are counted. */
  observeSessions(inner: SessionObserver): SessionObserver {
    return {
      connected: (cluster: string, session: string, hello: Hello__Output) => {
        this.sessionsTotal.inc();
        inner.connected(cluster, session, hello);
      },
      seen: (cluster: string, session: string) => inner.seen(cluster, session),
      acked: (cluster: string, ack: Ack__Output) => inner.acked(cluster, ack),
      disconnected: (cluster: string, session: string, reason: string) =>
        inner.disconnected(cluster, session, reason),
    };
  }

  /** The exposition text. */
  render(): string {
    return this.registry.render();
  }
}
