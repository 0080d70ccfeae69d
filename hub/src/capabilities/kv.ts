// Keeps reported capabilities in a JetStream KV bucket, one gzip-compressed JSON value
// per cluster, so a restarted hub renders with what its agents last reported instead of
// the defaults (which would change desired states back and forth until every agent has
// reconnected). Writes follow changes; a failed write is retried on the next interval.
import { gunzipSync, gzipSync } from 'node:zlib';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { durations, errorMessage } from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import type { CapabilitiesRecord, CapabilitiesStore } from './store.js';
import { openKv } from '../status/jetstream-replicas.js';

/** KV bucket holding one cluster's reported capabilities per key (the cluster name). */
export const CAPABILITIES_BUCKET = 'flotilla-capabilities';

/** Options of KvCapabilitiesPersistence. */
export interface KvCapabilitiesOptions {
  connection: () => Promise<NatsConnection>;
  /** True while NATS is connected; writes wait otherwise. */
  isConnected: () => boolean;
  store: Pick<CapabilitiesStore, 'restore' | 'takeDirty' | 'markDirty' | 'onChange'>;
  logger: Logger;
  /** Retry interval of failed writes (default durations.capabilitiesSaveRetry, 1 s). */
  retryIntervalMs?: number;
  /** Replicas of the bucket when created (default 1; hub.yaml nats.replicas). */
  replicas?: number;
}

/** Encodes a record as a KV value. */
export function encodeRecord(r: CapabilitiesRecord): Uint8Array {
  return gzipSync(JSON.stringify(r));
}

/** Decodes a KV value; throws on garbage. */
export function decodeRecord(data: Uint8Array): CapabilitiesRecord {
  const r = JSON.parse(gunzipSync(data).toString('utf8')) as CapabilitiesRecord;
  if (typeof r.cluster !== 'string' || !Array.isArray(r.apiVersions))
    throw new Error('not a capabilities record');
  return r;
}

/** Loads and saves the capabilities store from and to the flotilla-capabilities bucket. */
export class KvCapabilitiesPersistence {
  private kv: KV | undefined;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly opts: KvCapabilitiesOptions) {}

  private async bucket(): Promise<KV> {
    this.kv ??= await openKv(
      await this.opts.connection(),
      CAPABILITIES_BUCKET,
      { history: 1 },
      this.opts.replicas,
    );
    return this.kv;
  }

  /** Reads every stored record into the store; returns how many were added. */
  async restore(): Promise<number> {
    const kv = await this.bucket();
    const records: CapabilitiesRecord[] = [];
    for await (const key of await kv.keys()) {
      const entry = await kv.get(key);
      if (!entry || entry.operation !== 'PUT') continue;
      try {
        records.push({ ...decodeRecord(entry.value), cluster: key });
      } catch (err) {
        this.opts.logger.warn(
          { key, err: errorMessage(err) },
          'unreadable capabilities record skipped',
        );
      }
    }
    return this.opts.store.restore(records);
  }

  /** Writes changes as they come, and retries failed writes every interval. */
  start(): void {
    this.unsubscribe ??= this.opts.store.onChange(() => void this.flush());
    this.timer ??= setInterval(
      () => void this.flush(),
      this.opts.retryIntervalMs ?? durations.capabilitiesSaveRetry,
    );
    this.timer.unref();
  }

  /** Writes the records changed since the last flush. */
  flush(): Promise<void> {
    this.flushing ??= this.doFlush().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async doFlush(): Promise<void> {
    if (!this.opts.isConnected()) return;
    let kv: KV;
    try {
      kv = await this.bucket();
    } catch (err) {
      this.opts.logger.warn(
        { err: errorMessage(err) },
        'opening the capabilities bucket failed, will retry',
      );
      return;
    }
    const records = this.opts.store.takeDirty();
    if (records.length === 0) return;
    const results = await Promise.allSettled(
      records.map((r) => kv.put(r.cluster, encodeRecord(r))),
    );
    const failed = records.filter((_, i) => results[i]?.status === 'rejected');
    if (failed.length === 0) return;
    this.opts.store.markDirty(failed.map((r) => r.cluster));
    const first = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    this.opts.logger.warn(
      { records: failed.length, err: errorMessage(first.reason) },
      'saving capabilities failed, will retry',
    );
  }

  /** Stops after a last flush. */
  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }
}
