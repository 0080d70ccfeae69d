// A small Prometheus text endpoint (--metrics-addr): apply results and durations, drift
// checks, detections and heals, and the event buffer. No client library: a handful of
// counters in the exposition format is a few lines.
import type { Server } from 'node:http';
import { http } from '../node-http.js';

/** Counters of the drift detector, as DriftDetector.counts. */
export interface DriftCounts {
  checks: number;
  dryRuns: number;
  detected: number;
  healed: number;
  healFailed: number;
}

/** Where the numbers come from at scrape time. */
export interface MetricsSources {
  drift(): DriftCounts | undefined;
  /** oversized: events not sent because they were too big even with their texts cut. */
  events(): { pending: number; dropped: number; oversized?: number } | undefined;
}

/** Apply counters kept by the app; the rest is read from the sources when scraped. */
export class AgentMetrics {
  private readonly applies = { applied: 0, partial: 0, failed: 0, waiting: 0 };
  private applySecondsSum = 0;
  private lastApplySeconds = 0;

  constructor(private readonly sources: MetricsSources) {}

  /** Records one finished apply. */
  observeApply(result: 'applied' | 'partial' | 'failed' | 'waiting', durationMs: number): void {
    this.applies[result]++;
    this.lastApplySeconds = durationMs / 1000;
    this.applySecondsSum += durationMs / 1000;
  }

  /** The exposition text. */
  render(): string {
    const lines: string[] = [];
    const metric = (
      name: string,
      type: 'counter' | 'gauge',
      help: string,
      samples: [string, number][],
    ): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    const total = Object.values(this.applies).reduce((n, x) => n + x, 0);
    metric(
      'flotilla_agent_applies_total',
      'counter',
      'Applies of a desired state, by result.',
      Object.entries(this.applies).map(([r, n]) => [`{result="${r}"}`, n]),
    );
    metric('flotilla_agent_apply_seconds_sum', 'counter', 'Total time spent applying.', [
      ['', this.applySecondsSum],
    ]);
    metric('flotilla_agent_apply_seconds_count', 'counter', 'Applies timed.', [['', total]]);
    metric('flotilla_agent_last_apply_seconds', 'gauge', 'Duration of the last apply.', [
      ['', this.lastApplySeconds],
    ]);
    const d = this.sources.drift();
    if (d) {
      metric(
        'flotilla_agent_drift_checks_total',
        'counter',
        'Objects checked for drift after a watch event.',
        [['', d.checks]],
      );
      metric('flotilla_agent_drift_detected_total', 'counter', 'Drifts detected.', [
        ['', d.detected],
      ]);
      metric('flotilla_agent_drift_heals_total', 'counter', 'Corrective applies, by outcome.', [
        ['{outcome="ok"}', d.healed],
        ['{outcome="failed"}', d.healFailed],
      ]);
    }
    const e = this.sources.events();
    if (e) {
      metric('flotilla_agent_events_pending', 'gauge', 'Events waiting to be published.', [
        ['', e.pending],
      ]);
      metric(
        'flotilla_agent_events_dropped_total',
        'counter',
        'Events dropped because the buffer was full.',
        [['', e.dropped]],
      );
      metric(
        'flotilla_agent_events_oversized_total',
        'counter',
        'Events not sent because they were too big even with their texts cut.',
        [['', e.oversized ?? 0]],
      );
    }
    return `${lines.join('\n')}\n`;
  }
}

/** Serves GET /metrics on host:port until close(). */
export async function serveMetrics(addr: string, metrics: AgentMetrics): Promise<Server> {
  const colon = addr.lastIndexOf(':');
  const host = addr.slice(0, colon).replace(/^\[|\]$/g, '') || '0.0.0.0';
  const port = Number(addr.slice(colon + 1));
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics.render());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
