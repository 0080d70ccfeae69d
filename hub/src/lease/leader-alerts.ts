// Alert delivery among hub replicas: every replica folds the same events and so sees the
// same transitions, but only the lease holder sends. Before sending, the holder records
// the alert in a KV ledger with compare-and-set on "no value" (key: a digest of the
// alert's de-duplication key, value: its generation), so an alert one holder sent just
// before it died is not sent again by the next. A follower keeps what it would have sent
// for a short while: on taking the lease it sends those the ledger does not hold yet,
// which covers transitions folded between the old holder's death and the takeover.
import { createHash } from 'node:crypto';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { errorMessage } from '@flotilla/common';
import type { Alert } from '../notify/notifier.js';
import { alertKey } from '../notify/notifier.js';
import { openKv } from '../status/jetstream-replicas.js';

/** KV bucket recording the alerts sent (per hubId), kept for the de-duplication window. */
export const ALERT_LEDGER_BUCKET = 'flotilla-hub-alerts';

/**
 * How long a holder keeps trying to record an alert before sending it without the ledger
 * (default 20 s; tries 300 ms apart, growing to 2 s). A NATS node lost or a JetStream
 * leader being elected makes KV answer "no responders" for a few seconds: an alert sent
 * without the ledger then, and again by the next holder, is sent twice. Waiting costs a
 * few seconds of delay; the lease moving meanwhile hands the alert to the next holder.
 */
export const DEFAULT_LEDGER_PATIENCE_MS = 20_000;
const LEDGER_RETRY_MS = 300;
const LEDGER_RETRY_MAX_MS = 2_000;

/** Alerts a follower keeps for a takeover (at most 1,000, for keepMs). */
const FOLLOWER_BUFFER = 1_000;

/** What LeaderAlerts needs of the lease. */
export interface AlertLease {
  readonly leading: boolean;
  readonly generation: number | undefined;
  onChange(listener: (leading: boolean, generation: number) => void): () => void;
}

/** Options of LeaderAlerts. */
export interface LeaderAlertsOptions {
  connection: () => Promise<NatsConnection>;
  lease: AlertLease;
  /** Where alerts go once decided (the Notifier). */
  sink: { alert(a: Alert): void };
  /** The hubId: ledger keys are per hub. */
  hubId: string;
  /** How long a sent alert is remembered (the notifier's de-duplication window). */
  dedupeWindowMs: number;
  /** How long a follower keeps an alert for a takeover (a few lease TTLs). */
  keepMs: number;
  replicas?: number;
  /** How long to try recording an alert before sending it anyway (DEFAULT_LEDGER_PATIENCE_MS). */
  ledgerPatienceMs?: number;
  logger: Logger;
  now?: () => number;
}

/** An AlertSink sending only from the lease holder, each alert once across holders. */
export class LeaderAlerts {
  private kv: Promise<KV> | undefined;
  private kept: { at: number; alert: Alert }[] = [];
  private readonly now: () => number;
  private readonly off: () => void;

  constructor(private readonly opts: LeaderAlertsOptions) {
    this.now = opts.now ?? Date.now;
    // Opened now, not at the first alert: a bucket made just then on a NATS cluster may
    // not answer yet.
    void this.ledger().catch(() => undefined);
    this.off = opts.lease.onChange((leading) => {
      if (leading) void this.sendKept();
    });
  }

  /** Sends (holder) or keeps (follower) an alert; never waits. */
  alert(a: Alert): void {
    if (this.opts.lease.leading) {
      void this.send(a);
      return;
    }
    this.kept.push({ at: this.now(), alert: a });
    if (this.kept.length > FOLLOWER_BUFFER) this.kept.shift();
  }

  /** Stops following lease changes. */
  stop(): void {
    this.off();
  }

  private async sendKept(): Promise<void> {
    const since = this.now() - this.opts.keepMs;
    const kept = this.kept.filter((k) => k.at >= since).map((k) => k.alert);
    this.kept = [];
    for (const a of kept) await this.send(a);
  }

  private ledger(): Promise<KV> {
    this.kv ??= (async () =>
      openKv(
        await this.opts.connection(),
        ALERT_LEDGER_BUCKET,
        { history: 1, ttl: this.opts.dedupeWindowMs },
        this.opts.replicas,
      ))().catch((err: unknown) => {
      this.kv = undefined;
      throw err;
    });
    return this.kv;
  }

  private async send(a: Alert): Promise<void> {
    const generation = this.opts.lease.generation;
    if (generation === undefined) return;
    const key = `${this.opts.hubId}.${createHash('sha256').update(alertKey(a)).digest('hex')}`;
    const value = JSON.stringify({ generation, kind: a.kind, cluster: a.cluster });
    const giveUpAt = performance.now() + (this.opts.ledgerPatienceMs ?? DEFAULT_LEDGER_PATIENCE_MS);
    for (let attempt = 1; ; attempt++) {
      try {
        const kv = await this.ledger();
        // Compare-and-set on "never written": keys expire whole (the bucket's TTL) and are
        // never deleted, so there is no delete marker to write over.
        await kv.put(key, value, { previousSeq: 0 });
        break;
      } catch (err) {
        if (
          err instanceof JetStreamApiError &&
          (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
            err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
        )
          return; // Sent already, by this holder or an earlier one.
        // The lease moved while the ledger was away: the next holder sends it.
        if (this.opts.lease.generation !== generation) return;
        if (performance.now() < giveUpAt) {
          const pause = Math.min(LEDGER_RETRY_MS * attempt, LEDGER_RETRY_MAX_MS);
          await new Promise((r) => setTimeout(r, pause));
          continue;
        }
        // No ledger (NATS away): an alert sent twice beats one never sent.
        this.opts.logger.warn(
          { err: errorMessage(err), kind: a.kind, cluster: a.cluster },
          'alert ledger unavailable: sending without it',
        );
        break;
      }
    }
    // The lease may have moved while the ledger answered: the next holder sends it then.
    if (this.opts.lease.generation !== generation) return;
    this.opts.sink.alert(a);
  }
}
