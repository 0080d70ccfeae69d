// The once-only work lease of hub replicas. Several replicas of one hub (same hubId) fold
// every event into their own view and serve any agent and any read, but work that must
// happen once (status persistence, alert delivery) is done by the replica holding this
// lease: one key in a JetStream KV bucket whose entries expire after the lease's TTL.
//
//   follower ──create(key) succeeds──► leader ──update(key, rev) every ttl/4──► leader
//   leader ──update refused (another holder, or expired) / no renewal for ¾ ttl──► follower
//
// Safety against split brain: a follower can take the lease only once the server has
// dropped the key (its TTL passed since the holder's last write) or the holder released
// it; create() and update() are compare-and-set on the key's last revision, so two
// replicas never both succeed. The holder counts its lease from the moment it SENT the
// last successful write (the server stored it later, so the key lives at least ttl from
// then) and stops its work after ¾ ttl, a quarter of the TTL before any other replica
// could take over. Each acquisition has a generation, the KV revision of the write that
// took it: strictly increasing across holders, written with every once-only write, so a
// write from an older holder can be told from a newer one's.
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { LogFields, durations, errorMessage } from '@flotilla/common';
import { openKv } from '../status/jetstream-replicas.js';

/** KV bucket of the hub leases: one key per hubId; its TTL is the lease's. */
export const LEASE_BUCKET = 'flotilla-hub-leases';

/** Share of the TTL after the last renewal sent when the holder stops its work (¾). */
const VALID_SHARE = 0.75;

/** What the lease key holds (JSON). */
export interface LeaseRecord {
  /** The replica holding the lease. */
  holder: string;
  /** The KV revision of the write that took it (0 in that write itself). */
  generation: number;
  /** When the holder last renewed it (ISO, for people). */
  renewedAt: string;
}

/** Options of Lease. */
export interface LeaseOptions {
  connection: () => Promise<NatsConnection>;
  /** The lease's key: the hubId (one lease per hub, shared by its replicas). */
  name: string;
  /** This replica's id (replicaId). */
  holder: string;
  logger: Logger;
  /** How long the lease lives unless renewed (default durations.hubLeaseTtl, 3 s); the bucket's own TTL wins when it was created with another. */
  ttlMs?: number;
  /** How often a follower checks whether the lease is free (default durations.leaseCheckInterval, 250 ms). */
  checkIntervalMs?: number;
  /** Replicas of the bucket when created (default 1; hub.yaml nats.replicas). */
  replicas?: number;
  /** Monotonic clock in ms (default performance.now). */
  now?: () => number;
}

/** Lease states: following (not holding), leading (holding), stopped. */
export type LeaseState = 'following' | 'leading' | 'stopped';

/** Holds or waits for one hub's once-only work lease. */
export class Lease {
  private stateValue: LeaseState = 'following';
  private kv: KV | undefined;
  private ttl: number;
  private revision = 0;
  private generationValue = 0;
  private validUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private expiry: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private readonly listeners = new Set<(leading: boolean, generation: number) => void>();
  private readonly now: () => number;

  constructor(private readonly opts: LeaseOptions) {
    this.ttl = opts.ttlMs ?? durations.hubLeaseTtl;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Current state. */
  get state(): LeaseState {
    return this.stateValue;
  }

  /** True while this replica holds a lease that cannot have expired yet: do once-only work only then. */
  get leading(): boolean {
    return this.stateValue === 'leading' && this.now() < this.validUntil;
  }

  /** The generation of the lease held (KV revision of its acquisition); undefined when not leading. */
  get generation(): number | undefined {
    return this.leading ? this.generationValue : undefined;
  }

  /** Told of every change: (true, generation) on taking the lease, (false, last generation) on losing it. */
  onChange(listener: (leading: boolean, generation: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts trying to take the lease, and renewing it once held. */
  start(): void {
    if (this.timer || this.stateValue === 'stopped') return;
    const tick = (): void => {
      this.ticking = this.tick().finally(() => {
        this.ticking = undefined;
        if (this.stateValue === 'stopped') return;
        const every =
          this.stateValue === 'leading'
            ? this.ttl / 4
            : (this.opts.checkIntervalMs ?? durations.leaseCheckInterval);
        this.timer = setTimeout(tick, every);
        this.timer.unref();
      });
    };
    tick();
  }

  /** Stops; a held lease is released at once, so another replica takes over without waiting for the TTL. */
  async stop(): Promise<void> {
    const held = this.stateValue === 'leading';
    this.setState('stopped');
    clearTimeout(this.timer);
    clearTimeout(this.expiry);
    await this.ticking;
    if (!held || !this.kv) return;
    try {
      await this.kv.delete(this.opts.name, { previousSeq: this.revision });
      this.opts.logger.info({ lease: this.opts.name }, 'lease released');
    } catch (err) {
      // Another replica holds it already, or NATS is away: the TTL frees it either way.
      this.opts.logger.warn({ err: errorMessage(err) }, 'releasing the lease failed');
    }
  }

  private async bucket(): Promise<KV> {
    if (this.kv) return this.kv;
    const kv = await openKv(
      await this.opts.connection(),
      LEASE_BUCKET,
      { history: 1, ttl: this.ttl },
      this.opts.replicas,
    );
    // The server expires keys by the bucket's TTL: if it was made with another, that one counts.
    const ttl = (await kv.status()).ttl;
    if (ttl > 0 && ttl !== this.ttl) {
      this.opts.logger.warn(
        { bucket: LEASE_BUCKET, ttlMs: ttl, configuredMs: this.ttl },
        'lease bucket has another TTL: using it',
      );
      this.ttl = ttl;
    }
    this.kv = kv;
    return kv;
  }

  private record(): Uint8Array {
    const r: LeaseRecord = {
      holder: this.opts.holder,
      generation: this.stateValue === 'leading' ? this.generationValue : 0,
      renewedAt: new Date().toISOString(),
    };
    return new TextEncoder().encode(JSON.stringify(r));
  }

  private async tick(): Promise<void> {
    const sentAt = this.now();
    // A renewal that did not come back in time: the work stops before anyone may take over.
    if (this.stateValue === 'leading' && sentAt >= this.validUntil)
      this.lose('not renewed in time');
    try {
      const kv = await this.bucket();
      if (this.stateValue === 'leading') {
        this.revision = await kv.update(this.opts.name, this.record(), this.revision);
        if (this.stateValue !== 'leading') return;
        this.validFrom(sentAt);
        return;
      }
      if (this.stateValue !== 'following') return;
      const current = await kv.get(this.opts.name);
      if (current && current.operation === 'PUT') return;
      // Free (expired or released): compare-and-set on "no value", so only one replica wins.
      const rev = await kv.create(this.opts.name, this.record());
      if (this.stateValue !== 'following') return;
      this.revision = rev;
      this.generationValue = rev;
      this.setState('leading');
      this.validFrom(sentAt);
      this.opts.logger.info(
        { lease: this.opts.name, holder: this.opts.holder, [LogFields.generation]: rev },
        'lease taken: doing the once-only work',
      );
      for (const l of this.listeners) l(true, rev);
    } catch (err) {
      if (
        err instanceof JetStreamApiError &&
        (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
          err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
      ) {
        // Someone else's write is the key's last: they hold it (or took it just now).
        if (this.stateValue === 'leading') this.lose('another replica holds the lease');
        return;
      }
      if (this.stateValue === 'leading' && this.now() >= this.validUntil)
        this.lose(`not renewed in time: ${errorMessage(err)}`);
      else this.opts.logger.debug({ err: errorMessage(err) }, 'lease check failed, will retry');
    }
  }

  // The lease counts from when its last write was sent; without a renewal by then, the
  // work stops even while a request to NATS still hangs.
  private validFrom(sentAt: number): void {
    this.validUntil = sentAt + this.ttl * VALID_SHARE;
    clearTimeout(this.expiry);
    this.expiry = setTimeout(
      () => this.lose('not renewed in time'),
      Math.max(0, this.validUntil - this.now()),
    );
    this.expiry.unref();
  }

  private lose(why: string): void {
    clearTimeout(this.expiry);
    if (this.stateValue !== 'leading') return;
    this.setState('following');
    this.opts.logger.warn(
      { lease: this.opts.name, [LogFields.generation]: this.generationValue, why },
      'lease lost: once-only work stopped',
    );
    for (const l of this.listeners) l(false, this.generationValue);
  }

  private setState(to: LeaseState): void {
    if (this.stateValue === 'stopped') return;
    this.stateValue = to;
  }
}
