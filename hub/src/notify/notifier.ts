// Alerts on divergence: drift, failure and offline TRANSITIONS go to the configured
// webhooks. Each webhook has its own bounded queue and sender, so a slow or dead
// receiver never blocks the events consumer or the other webhooks. Repeats of the same
// alert within the de-duplication window are dropped; a token bucket caps the rate;
// failed posts are retried with backoff. Webhook URLs (Slack's carry a secret) are
// never logged: log lines name the webhook.
import type { Logger } from '@flotilla/common';
import { Backoff, LogFields, errorMessage, sleep } from '@flotilla/common';

/**
 * What an alert is about; render: a bundle (or a cluster's whole state) failed to render;
 * rollout: a rollout halted, waits for approval, rolled back or completed.
 */
export type AlertKind = 'drift' | 'failed' | 'offline' | 'render' | 'rollout';

/** One alert. */
export interface Alert {
  kind: AlertKind;
  cluster: string;
  /**
   * The bundle for drift and bundle failures; "" when about the whole cluster. Render
   * alerts name the cluster only when one is concerned ("" and `clusters` otherwise).
   */
  bundle: string;
  revision: string;
  message: string;
  /** ISO time of the transition. */
  time: string;
  /** Drifted objects, for drift alerts. */
  objects?: {
    kind: string;
    namespace: string;
    name: string;
    fields: string[];
    changedBy: string[];
  }[];
  /** Render alerts: the clusters kept from the revision (at most 20 named) and how many in all. */
  clusters?: string[];
  clusterCount?: number;
  /** Render alerts: the commit whose rendering those clusters keep getting ("" for none). */
  servingRevision?: string;
  /** Rollout alerts: the rollout and the phase it entered. */
  rollout?: { id: string; phase: string };
}

/** What makes two alerts the same one (de-duplicated within the window): never the time. */
export function alertKey(a: Alert): string {
  const detail =
    a.kind === 'drift'
      ? (a.objects?.map((o) => `${o.kind}/${o.namespace}/${o.name}`).join(',') ?? '')
      : a.kind === 'rollout'
        ? `${a.rollout?.id ?? ''}/${a.rollout?.phase ?? ''}/${a.message}`
        : '';
  return `${a.kind}|${a.cluster}|${a.bundle}|${a.revision}|${detail}`;
}

/** A configured webhook (config notify.webhooks[]). */
export interface WebhookTarget {
  name: string;
  url: string;
  /** "slack": {text}; "json": the Alert as JSON. */
  format: 'slack' | 'json';
  /** Kinds this webhook wants (default all). */
  events: readonly AlertKind[];
}

/** Named defaults of the notifier. */
export const NOTIFY_DEFAULTS = {
  /** The same alert is sent at most once per this window (10 min). */
  dedupeWindowMs: 10 * 60_000,
  /** Burst a webhook may receive at once (20 posts). */
  rateBurst: 20,
  /** Sustained rate: one more post per this interval (3 s, i.e. 20 a minute). */
  rateRefillMs: 3_000,
  /** Alerts waiting per webhook before new ones are dropped (500). */
  queueLimit: 500,
  /** Attempts per post (3), first retry delay (1 s), and each post's timeout (5 s). */
  attempts: 3,
  retryInitialMs: 1_000,
  postTimeoutMs: 5_000,
} as const;

/** Options of Notifier. */
export interface NotifierOptions {
  webhooks: readonly WebhookTarget[];
  logger: Logger;
  /** Called with each outcome: sent | failed | deduplicated | rate_limited | dropped. */
  onOutcome?: (webhook: string, outcome: string) => void;
  dedupeWindowMs?: number;
  rateBurst?: number;
  rateRefillMs?: number;
  retryInitialMs?: number;
  now?: () => number;
}

/** Slack-compatible text of an alert. */
export function alertText(a: Alert): string {
  if (a.kind === 'render') return renderAlertText(a);
  if (a.kind === 'rollout') return rolloutAlertText(a);
  const where = a.bundle ? `bundle ${a.bundle} on cluster ${a.cluster}` : `cluster ${a.cluster}`;
  const rev = a.revision ? ` at ${a.revision.slice(0, 12)}` : '';
  const head = {
    drift: `:warning: Drift on ${where}${rev}`,
    failed: `:x: Apply failed on ${where}${rev}`,
    offline: `:electric_plug: ${where} is offline`,
  }[a.kind as Exclude<AlertKind, 'render' | 'rollout'>];
  const objects = (a.objects ?? [])
    .slice(0, 5)
    .map(
      (o) =>
        `• ${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}: ${o.fields.join(', ') || 'changed'}${o.changedBy.length ? ` (by ${o.changedBy.join(', ')})` : ''}`,
    );
  return [head, ...(a.message ? [a.message] : []), ...objects].join('\n');
}

const ROLLOUT_HEADS: Record<string, string> = {
  Halted: ':octagonal_sign: Rollout halted',
  AwaitingApproval: ':raised_hand: Rollout waits for approval',
  RolledBack: ':leftwards_arrow_with_hook: Rollout rolled back',
  Completed: ':white_check_mark: Rollout completed',
};

function rolloutAlertText(a: Alert): string {
  const r = a.rollout;
  const head = ROLLOUT_HEADS[r?.phase ?? ''] ?? `Rollout ${r?.phase ?? ''}`;
  const what = `${head}: bundle ${a.bundle} at ${a.revision.slice(0, 12)} (${r?.id ?? ''})`;
  return [what, ...(a.message ? [a.message] : [])].join('\n');
}

function renderAlertText(a: Alert): string {
  const what = a.bundle ? `Bundle ${a.bundle}` : `The desired state of cluster ${a.cluster}`;
  const names = a.clusters ?? (a.cluster ? [a.cluster] : []);
  const count = a.clusterCount ?? names.length;
  const more = count > names.length ? ` and ${count - names.length} more` : '';
  const on = a.bundle && count > 0 ? ` for ${names.join(', ')}${more}` : '';
  const serving = a.servingRevision ? ` (still serving ${a.servingRevision.slice(0, 12)})` : '';
  return [
    `:x: ${what} failed to render at ${a.revision.slice(0, 12)}${on}${serving}`,
    ...(a.message ? [a.message] : []),
  ].join('\n');
}

class WebhookSender {
  private readonly queue: Alert[] = [];
  private tokens: number;
  private refilledAt: number;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    readonly target: WebhookTarget,
    private readonly opts: NotifierOptions,
    private readonly now: () => number,
  ) {
    this.tokens = opts.rateBurst ?? NOTIFY_DEFAULTS.rateBurst;
    this.refilledAt = now();
  }

  private takeToken(): boolean {
    const burst = this.opts.rateBurst ?? NOTIFY_DEFAULTS.rateBurst;
    const every = this.opts.rateRefillMs ?? NOTIFY_DEFAULTS.rateRefillMs;
    const gained = Math.floor((this.now() - this.refilledAt) / every);
    if (gained > 0) {
      this.tokens = Math.min(burst, this.tokens + gained);
      this.refilledAt += gained * every;
    }
    if (this.tokens <= 0) return false;
    this.tokens--;
    return true;
  }

  enqueue(a: Alert): string {
    if (!this.takeToken()) return 'rate_limited';
    if (this.queue.length >= NOTIFY_DEFAULTS.queueLimit) return 'dropped';
    this.queue.push(a);
    this.running ??= this.drain().finally(() => (this.running = undefined));
    return 'queued';
  }

  private async drain(): Promise<void> {
    while (!this.stopped && this.queue.length > 0) {
      const a = this.queue.shift() as Alert;
      this.opts.onOutcome?.(this.target.name, (await this.post(a)) ? 'sent' : 'failed');
    }
  }

  private async post(a: Alert): Promise<boolean> {
    const body = this.target.format === 'slack' ? { text: alertText(a) } : a;
    const backoff = new Backoff({
      initialMs: this.opts.retryInitialMs ?? NOTIFY_DEFAULTS.retryInitialMs,
      maxMs: 30_000,
    });
    const log = this.opts.logger;
    for (let attempt = 1; attempt <= NOTIFY_DEFAULTS.attempts; attempt++) {
      try {
        const res = await fetch(this.target.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(NOTIFY_DEFAULTS.postTimeoutMs),
        });
        await res.arrayBuffer().catch(() => undefined);
        if (res.ok) return true;
        // 4xx other than 429 will not get better by retrying.
        if (res.status < 500 && res.status !== 429) {
          log.warn(
            { webhook: this.target.name, status: res.status, [LogFields.cluster]: a.cluster },
            'webhook rejected the alert',
          );
          return false;
        }
        log.warn({ webhook: this.target.name, status: res.status, attempt }, 'webhook post failed');
      } catch (err) {
        // The error may quote the URL: log only its class of failure.
        log.warn(
          {
            webhook: this.target.name,
            attempt,
            err:
              (err as Error).name === 'TimeoutError'
                ? 'timeout'
                : errorMessage((err as Error).cause ?? err).replace(/https?:\/\/\S+/g, '<url>'),
          },
          'webhook post failed',
        );
      }
      if (attempt < NOTIFY_DEFAULTS.attempts && !this.stopped) await sleep(backoff.next());
    }
    return false;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
}

/** Sends alerts to webhooks, de-duplicated and rate-limited. */
export class Notifier {
  private readonly senders: WebhookSender[];
  private readonly seen = new Map<string, number>();
  private readonly now: () => number;

  constructor(private readonly opts: NotifierOptions) {
    this.now = opts.now ?? Date.now;
    this.senders = opts.webhooks.map((w) => new WebhookSender(w, opts, this.now));
  }

  /** Queues an alert for every webhook that wants its kind; never waits for delivery. */
  alert(a: Alert): void {
    const now = this.now();
    const window = this.opts.dedupeWindowMs ?? NOTIFY_DEFAULTS.dedupeWindowMs;
    const key = alertKey(a);
    const last = this.seen.get(key);
    const duplicate = last !== undefined && now - last < window;
    if (!duplicate) this.seen.set(key, now);
    if (this.seen.size > 10_000)
      for (const [k, t] of this.seen) if (now - t >= window) this.seen.delete(k);
    for (const s of this.senders) {
      if (!s.target.events.includes(a.kind)) continue;
      if (duplicate) {
        this.opts.onOutcome?.(s.target.name, 'deduplicated');
        continue;
      }
      const outcome = s.enqueue(a);
      if (outcome !== 'queued') {
        this.opts.onOutcome?.(s.target.name, outcome);
        this.opts.logger.warn(
          { webhook: s.target.name, [LogFields.cluster]: a.cluster, outcome },
          'alert not sent',
        );
      }
    }
  }

  /** Resolves when every queue is empty (for tests and shutdown). */
  async idle(): Promise<void> {
    await Promise.all(this.senders.map((s) => s.idle()));
  }

  /** Stops sending; what is in flight finishes. */
  async stop(): Promise<void> {
    await Promise.all(this.senders.map((s) => s.stop()));
  }
}
