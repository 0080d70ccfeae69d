// Identity records of hub replicas in a JetStream KV bucket (flotilla-identity-<hubId>),
// one key per record: `cluster.<name>`, `bootstrap.<token id>`, `apitoken.<name>`,
// `admin.<name>`, `natsrevoked.<public key>`, `roster.admins` (the people not revoked:
// the last-administrator check is one compare-and-set on it), and `ca` (the CA certificate's fingerprint,
// so replicas mounting different CAs are refused). Values are JSON and hold no secret:
// tokens are sha256 digests, certificates are serials.
//
// Every replica follows the bucket with a watch into its in-memory view, so certificate
// checks stay local; a change is written by compare-and-set on the key's last revision
// (a put expecting the key's last revision, 0 for a key never written), and retried with
// the newer record when another replica got there first. Two replicas spending one
// bootstrap token at the same moment: one write wins, the other re-reads the record,
// sees it used and refuses.
import { JetStreamApiCodes, JetStreamApiError } from '@nats-io/jetstream';
import type { KV, KvEntry } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { Backoff, FlotillaError, errorMessage } from '@flotilla/common';
import { openKv } from '../status/jetstream-replicas.js';
import { IdentityStore } from './store.js';
import { UNCHANGED, emptyView, viewOfState } from './records.js';
import type {
  IdentityRecords,
  IdentityView,
  RecordChange,
  RecordKind,
  RecordOf,
  RemoteChangeListener,
} from './records.js';

/** The KV bucket of one hub's identity records. */
export function identityBucket(hubId: string): string {
  return `flotilla-identity-${hubId}`;
}

/** Key prefix of each kind of record. */
const PREFIX: Record<RecordKind, string> = {
  clusters: 'cluster',
  tokens: 'bootstrap',
  apiTokens: 'apitoken',
  admins: 'admin',
  natsRevocations: 'natsrevoked',
  rosters: 'roster',
};
const KIND_OF = new Map(Object.entries(PREFIX).map(([k, p]) => [p, k as RecordKind]));
/** The key holding the CA certificate's fingerprint. */
const CA_KEY = 'ca';
/** Attempts of one compare-and-set change before giving up (each after a re-read). */
const MAX_ATTEMPTS = 10;
/** What a delete of ours is remembered as while in flight. */
const DELETING = '\0delete';

/** Options of KvIdentityRecords. */
export interface KvIdentityRecordsOptions {
  connection: () => Promise<NatsConnection>;
  /** The hub's hubId: names the bucket. */
  hubId: string;
  /** Replicas of the bucket when created (hub.yaml nats.replicas). */
  replicas?: number;
  logger: Logger;
  /** An identity-state.json whose records are copied in when the bucket holds none. */
  importFrom?: string;
  /** How often a start waiting for NATS says so in the log (default 5 s). */
  waitLogMs?: number;
}

function isConflict(err: unknown): boolean {
  return (
    err instanceof JetStreamApiError &&
    (err.code === JetStreamApiCodes.StreamWrongLastSequence ||
      err.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)
  );
}

/** Identity records in JetStream KV, followed by a watch; see the file comment. */
export class KvIdentityRecords implements IdentityRecords {
  readonly view: IdentityView = emptyView();
  readonly bucketName: string;
  private kv: KV | undefined;
  /** Last revision seen per key (deletes included): the compare-and-set base. */
  private readonly revisions = new Map<string, number>();
  /** Payloads this process is writing, by key: their watch echo is not someone else's change. */
  private readonly inflight = new Map<string, string>();
  /** Local changes of one key run one after the other. */
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly listeners = new Set<RemoteChangeListener>();
  private watcher: Awaited<ReturnType<KV['watch']>> | undefined;
  private loaded = false;
  private stopped = false;
  private following: Promise<void> | undefined;

  constructor(private readonly opts: KvIdentityRecordsOptions) {
    this.bucketName = identityBucket(opts.hubId);
  }

  get where(): string {
    return `JetStream KV bucket ${this.bucketName}`;
  }

  /**
   * Opens the bucket, reads every record through the watch, then keeps following it. Waits
   * for NATS, saying so every `waitLogMs`: a replica cannot check any certificate without
   * the records, and a copy kept from an earlier run would accept certificates revoked
   * since, so it does not serve (is not ready) until it has read them.
   */
  async start(): Promise<void> {
    const began = performance.now();
    const waiting = setInterval(() => {
      this.opts.logger.warn(
        { bucket: this.bucketName, waitedMs: Math.round(performance.now() - began) },
        'identity records cannot be read yet (NATS unreachable): this replica cannot check certificates and is not ready until it reads them',
      );
    }, this.opts.waitLogMs ?? 5_000);
    waiting.unref();
    try {
      await this.load();
    } finally {
      clearInterval(waiting);
    }
  }

  private async load(): Promise<void> {
    const kv = await openKv(
      await this.opts.connection(),
      this.bucketName,
      { history: 1 },
      this.opts.replicas,
    );
    this.kv = kv;
    const empty = (await kv.status()).values === 0;
    await new Promise<void>((resolve, reject) => {
      this.following = this.follow(kv, empty, resolve, reject);
    });
    this.loaded = true;
    if (this.opts.importFrom && this.count() === 0) await this.importFile(this.opts.importFrom);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watcher?.stop();
    await this.following;
    await Promise.allSettled([...this.chains.values()]);
  }

  onRemoteChange(listener: RemoteChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Records the CA certificate's fingerprint on first start; a replica presenting another
   * CA is refused (replicas must mount the same CA, else each would trust only its own agents).
   */
  async adoptCa(fingerprint: string): Promise<void> {
    const kv = this.bucket();
    for (let attempt = 1; ; attempt++) {
      const e = await kv.get(CA_KEY);
      if (e?.operation === 'PUT') {
        const stored = e.json<{ sha256: string }>().sha256;
        if (stored !== fingerprint)
          throw new FlotillaError(
            'CONFIG_INVALID',
            `identity.stateDir: this replica's CA certificate (sha256 ${fingerprint}) is not the one the other replicas of this hub use (sha256 ${stored}, in ${this.where}): mount the same ca.crt and ca.key in every replica`,
          );
        return;
      }
      try {
        await kv.put(CA_KEY, JSON.stringify({ sha256: fingerprint }), {
          previousSeq: e?.revision ?? 0,
        });
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= MAX_ATTEMPTS) throw this.unavailable(err);
      }
    }
  }

  update<K extends RecordKind>(
    kind: K,
    key: string,
    change: RecordChange<K>,
  ): Promise<RecordOf<K> | undefined> {
    const k = `${PREFIX[kind]}.${key}`;
    const run = (this.chains.get(k) ?? Promise.resolve())
      .catch(() => undefined)
      .then(() => this.casLoop(kind, key, k, change));
    this.chains.set(k, run);
    void run
      .finally(() => {
        if (this.chains.get(k) === run) this.chains.delete(k);
      })
      .catch(() => undefined);
    return run;
  }

  private async casLoop<K extends RecordKind>(
    kind: K,
    key: string,
    k: string,
    change: RecordChange<K>,
  ): Promise<RecordOf<K> | undefined> {
    const kv = this.bucket();
    const records = this.view[kind] as Record<string, RecordOf<K>>;
    for (let attempt = 1; ; attempt++) {
      const rev = this.revisions.get(k) ?? 0;
      const current = records[key];
      const next = change(current === undefined ? undefined : structuredClone(current));
      if (next === UNCHANGED) return current;
      if (next === undefined && current === undefined) return undefined;
      const payload = next === undefined ? DELETING : JSON.stringify(next);
      this.inflight.set(k, payload);
      try {
        if (next === undefined) {
          await kv.delete(k, { previousSeq: rev });
          // The marker's revision comes with the watch; nothing newer was seen meanwhile.
          if ((this.revisions.get(k) ?? 0) === rev) delete records[key];
        } else {
          const written = await kv.put(k, payload, { previousSeq: rev });
          if (written > (this.revisions.get(k) ?? 0)) {
            this.revisions.set(k, written);
            records[key] = next;
          }
        }
        return next;
      } catch (err) {
        if (!isConflict(err)) throw this.unavailable(err);
        if (attempt >= MAX_ATTEMPTS)
          throw new FlotillaError(
            'UNAVAILABLE',
            `identity record ${k} kept changing under ${MAX_ATTEMPTS} attempts to write it; retry`,
            { retryable: true },
          );
        // Someone else wrote it first: read theirs, and decide again from it.
        const fresh = await kv.get(k).catch((e: unknown) => {
          throw this.unavailable(e);
        });
        if (fresh) this.apply(fresh);
      } finally {
        if (this.inflight.get(k) === payload) this.inflight.delete(k);
      }
    }
  }

  private bucket(): KV {
    if (!this.kv) throw new Error('identity records used before start()');
    return this.kv;
  }

  private unavailable(err: unknown): FlotillaError {
    if (err instanceof FlotillaError) return err;
    return new FlotillaError(
      'UNAVAILABLE',
      `identity records in ${this.where} cannot be written: ${errorMessage(err)}`,
      { retryable: true, cause: err },
    );
  }

  private count(): number {
    return Object.values(this.view).reduce((n, r) => n + Object.keys(r).length, 0);
  }

  // Follows the bucket until stopped; a watch that ends (NATS away too long) is re-opened
  // from the revision after the last one seen.
  private async follow(
    kv: KV,
    empty: boolean,
    ready: () => void,
    failed: (err: unknown) => void,
  ): Promise<void> {
    const backoff = new Backoff({ initialMs: 250, maxMs: 5_000 });
    let first = true;
    if (empty) ready();
    while (!this.stopped) {
      try {
        const last = Math.max(0, ...this.revisions.values());
        const watcher = await kv.watch(last > 0 ? { resumeFromRevision: last + 1 } : {});
        this.watcher = watcher;
        if (this.stopped) watcher.stop();
        for await (const e of watcher) {
          this.apply(e);
          backoff.reset();
          if (first && e.delta === 0) {
            first = false;
            ready();
          }
        }
      } catch (err) {
        if (first && !empty) {
          failed(this.unavailable(err));
          return;
        }
        this.opts.logger.warn(
          { bucket: this.bucketName, err: errorMessage(err) },
          'identity records watch failed; reopening',
        );
      }
      if (!this.stopped) await new Promise((r) => setTimeout(r, backoff.next()).unref());
    }
  }

  // Applies one stored entry to the view; tells listeners when it is not this process's write.
  private apply(e: KvEntry): void {
    if (e.revision <= (this.revisions.get(e.key) ?? 0)) return;
    this.revisions.set(e.key, e.revision);
    const dot = e.key.indexOf('.');
    const kind = dot > 0 ? KIND_OF.get(e.key.slice(0, dot)) : undefined;
    if (!kind) return;
    const id = e.key.slice(dot + 1);
    const records = this.view[kind] as Record<string, unknown>;
    const before = records[id];
    let after: unknown;
    if (e.operation === 'PUT') {
      try {
        after = e.json<unknown>();
      } catch (err) {
        this.opts.logger.warn(
          { key: e.key, err: errorMessage(err) },
          'unreadable identity record skipped',
        );
        return;
      }
      records[id] = after;
    } else delete records[id];
    const payload = e.operation === 'PUT' ? e.string() : DELETING;
    if (!this.loaded || this.inflight.get(e.key) === payload) return;
    if (before === undefined && after === undefined) return;
    for (const l of this.listeners) {
      try {
        l(kind, id, before as RecordOf<typeof kind>, after as RecordOf<typeof kind>);
      } catch (err) {
        this.opts.logger.warn(
          { key: e.key, err: errorMessage(err) },
          'identity change listener failed',
        );
      }
    }
  }

  // First start of a replicated hub that ran alone before: its records come along.
  private async importFile(file: string): Promise<void> {
    const state = await new IdentityStore(file).load();
    const from = viewOfState(state);
    let n = 0;
    for (const kind of Object.keys(from) as RecordKind[])
      for (const [key, record] of Object.entries(from[kind])) {
        await this.update(kind, key, (cur) => (cur === undefined ? record : UNCHANGED));
        n++;
      }
    if (n > 0)
      this.opts.logger.info(
        { file, records: n, bucket: this.bucketName },
        'identity records imported from the state file (it is no longer read)',
      );
  }
}
