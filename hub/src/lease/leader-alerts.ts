// Alert delivery among hub replicas: every replica folds the same events and so sees the
// same transitions, but only the lease holder sends. Before sending, the holder claims the
// alert in a KV ledger (key: a digest of the alert's de-duplication key; value: the
// holder's lease generation and whether the alert went out), and after sending it marks
// the claim sent. An alert one holder sent just before it died is not sent again by the
// next; a claim whose holder lost the lease before sending is taken over by the next
// holder. A follower keeps what it would have sent for a short while: on taking the lease
// it sends those the ledger does not show as sent, which covers transitions folded between
// the old holder's death and the takeover.
//
// A claim is not a send: a write whose answer was lost (a NATS node gone, a JetStream
// leader being elected) may still land, so "the key exists" alone would drop an alert that
// nobody sent. Only a claim marked sent stops the next holder.
import { createHash } from 'node:crypto';
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { errorMessage, sleep } from '@flotilla/common';
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

/** How often a holder tries to mark a claim sent (300 ms apart) before leaving it. */
const MARK_SENT_TRIES = 3;

/** An alert's entry in the ledger. */
export interface LedgerClaim {
  /** The lease generation of the holder that claimed it. */
  generation: number;
  /** Whether that holder sent it (false: claimed, maybe not sent). */
  sent: boolean;
  kind: string;
  cluster: string;
}

/**
 * What LeaderAlerts needs of the ledger: compare-and-set writes on one key per alert.
 * Each call throws when the ledger does not answer (a write that threw may still land).
 */
export interface AlertLedger {
  /** Writes the key if absent: its revision, or undefined when the key exists. */
  create(key: string, claim: LedgerClaim): Promise<number | undefined>;
  /** The key's claim and revision, or undefined when it is absent. */
  read(key: string): Promise<{ claim: LedgerClaim; revision: number } | undefined>;
  /** Writes the key if it is still at revision: its new revision, or undefined when it moved. */
  update(key: string, claim: LedgerClaim, revision: number): Promise<number | undefined>;
}

/** Options of KvAlertLedger. */
export interface KvAlertLedgerOptions {
  connection: () => Promise<NatsConnection>;
  /** How long a claim is kept (the notifier's de-duplication window): the bucket's TTL. */
  dedupeWindowMs: number;
  replicas?: number;
}

/** The alert ledger in a JetStream KV bucket; claims expire whole with the bucket's TTL. */
export class KvAlertLedger implements AlertLedger {
  private kv: Promise<KV> | undefined;

  constructor(private readonly opts: KvAlertLedgerOptions) {
    // Opened now, not at the first alert: a bucket made just then on a NATS cluster may
    // not answer yet.
    void this.open().catch(() => undefined);
  }

  async create(key: string, claim: LedgerClaim): Promise<number | undefined> {
    return this.write(key, claim, 0);
  }

  async read(key: string): Promise<{ claim: LedgerClaim; revision: number } | undefined> {
    const entry = await (await this.open()).get(key);
    if (!entry || entry.operation !== 'PUT') return undefined;
    return { claim: parseClaim(entry.string()), revision: entry.revision };
  }

  async update(key: string, claim: LedgerClaim, revision: number): Promise<number | undefined> {
    return this.write(key, claim, revision);
  }

  private async write(
    key: string,
    claim: LedgerClaim,
    previousSeq: number,
  ): Promise<number | undefined> {
    const kv = await this.open();
    try {
      return await kv.put(key, JSON.stringify(claim), { previousSeq });
    } catch (err) {
      if (
        err instanceof JetStreamApiError &&
        (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
          err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
      )
        return undefined;
      throw err;
    }
  }

  private open(): Promise<KV> {
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
}

/**
 * A claim as stored. Entries written before claims carried `sent` were written just
 * before sending: they count as sent. An entry that is not a claim counts as sent too
 * (sending again is what the ledger is there to prevent).
 */
export function parseClaim(text: string): LedgerClaim {
  try {
    const v = JSON.parse(text) as Partial<LedgerClaim>;
    return {
      generation: typeof v.generation === 'number' ? v.generation : 0,
      sent: typeof v.sent === 'boolean' ? v.sent : true,
      kind: typeof v.kind === 'string' ? v.kind : '',
      cluster: typeof v.cluster === 'string' ? v.cluster : '',
    };
  } catch {
    return { generation: 0, sent: true, kind: '', cluster: '' };
  }
}

/** What LeaderAlerts needs of the lease. */
export interface AlertLease {
  readonly leading: boolean;
  readonly generation: number | undefined;
  onChange(listener: (leading: boolean, generation: number) => void): () => void;
}

/** Options of LeaderAlerts. */
export interface LeaderAlertsOptions {
  /** Where claims are recorded (KvAlertLedger in the hub). */
  ledger: AlertLedger;
  lease: AlertLease;
  /** Where alerts go once decided (the Notifier). */
  sink: { alert(a: Alert): void };
  /** The hubId: ledger keys are per hub. */
  hubId: string;
  /** How long a follower keeps an alert for a takeover (a few lease TTLs). */
  keepMs: number;
  /** How long to try recording an alert before sending it anyway (DEFAULT_LEDGER_PATIENCE_MS). */
  ledgerPatienceMs?: number;
  logger: Logger;
  now?: () => number;
}

/** An AlertSink sending only from the lease holder, each alert once across holders. */
export class LeaderAlerts {
  private kept: { at: number; alert: Alert }[] = [];
  private readonly now: () => number;
  private readonly off: () => void;

  constructor(private readonly opts: LeaderAlertsOptions) {
    this.now = opts.now ?? Date.now;
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

  private async send(a: Alert): Promise<void> {
    const generation = this.opts.lease.generation;
    if (generation === undefined) return;
    const key = `${this.opts.hubId}.${createHash('sha256').update(alertKey(a)).digest('hex')}`;
    const claim: LedgerClaim = { generation, sent: false, kind: a.kind, cluster: a.cluster };
    const giveUpAt = performance.now() + (this.opts.ledgerPatienceMs ?? DEFAULT_LEDGER_PATIENCE_MS);
    let revision: number | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await this.claim(key, claim);
        // Sent already (by this holder or an earlier one), or a newer holder has it.
        if (outcome === 'settled') return;
        revision = outcome;
        break;
      } catch (err) {
        // The lease moved while the ledger was away: the next holder sends it.
        if (this.opts.lease.generation !== generation) return;
        if (performance.now() < giveUpAt) {
          await sleep(Math.min(LEDGER_RETRY_MS * attempt, LEDGER_RETRY_MAX_MS));
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
    // The lease may have moved while the ledger answered: the next holder takes the claim.
    if (this.opts.lease.generation !== generation) return;
    this.opts.sink.alert(a);
    if (revision !== undefined) await this.markSent(key, claim, revision);
  }

  /**
   * Claims an alert for this holder: the claim's revision, or 'settled' when it was sent
   * already or a newer holder claimed it. A claim of this generation found in the ledger is
   * this holder's own earlier write whose answer was lost; an older holder's claim not
   * marked sent is taken over (that holder lost the lease before it could send).
   */
  private async claim(key: string, claim: LedgerClaim): Promise<number | 'settled'> {
    const { ledger } = this.opts;
    for (let round = 0; round < 3; round++) {
      const created = await ledger.create(key, claim);
      if (created !== undefined) return created;
      const current = await ledger.read(key);
      if (current === undefined) continue; // Expired between the two calls.
      if (current.claim.sent || current.claim.generation > claim.generation) return 'settled';
      if (current.claim.generation === claim.generation) return current.revision;
      const taken = await ledger.update(key, claim, current.revision);
      if (taken !== undefined) return taken;
    }
    throw new Error('the ledger entry kept changing while it was claimed');
  }

  /**
   * Marks a claim sent, so a later holder does not send it again. Left after a few tries:
   * the cost is a second send if the lease moves before the claim expires.
   */
  private async markSent(key: string, claim: LedgerClaim, revision: number): Promise<void> {
    for (let attempt = 1; attempt <= MARK_SENT_TRIES; attempt++) {
      try {
        await this.opts.ledger.update(key, { ...claim, sent: true }, revision);
        return; // Written, or moved on (a newer holder's claim, or this write landed before).
      } catch (err) {
        if (attempt === MARK_SENT_TRIES)
          this.opts.logger.debug(
            { err: errorMessage(err), kind: claim.kind, cluster: claim.cluster },
            'alert ledger: could not mark an alert sent',
          );
        else await sleep(LEDGER_RETRY_MS);
      }
    }
  }
}
