// How many copies NATS keeps of what the hub stores: every stream and KV bucket the hub
// creates gets `nats.replicas` (hub.yaml; 1 on a single server, 3 on a three-node
// cluster). One made earlier with fewer replicas is scaled up in place (JetStream copies
// it to the new peers); never down, which an operator may have chosen on purpose.
import {
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import type { StreamConfig } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV, KvOptions } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { errorMessage } from '@flotilla/common';

/**
 * Creates a stream unless it exists, with `replicas` copies (an older one is scaled up);
 * another hub creating it at the same moment is not an error.
 */
export async function ensureStream(
  nc: NatsConnection,
  config: Partial<StreamConfig> & { name: string },
  replicas = 1,
): Promise<void> {
  const jsm = await jetstreamManager(nc);
  try {
    await jsm.streams.info(config.name);
    await scaleStream(nc, config.name, replicas);
    return;
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== JetStreamApiCodes.StreamNotFound)
      throw err;
  }
  try {
    await jsm.streams.add({ ...config, num_replicas: replicas });
  } catch (err) {
    // Another hub created it between our info and add.
    await jsm.streams.info(config.name).catch(() => {
      throw err;
    });
  }
}

/**
 * Every JSON record of `stream` newer than sinceMs, oldest first, read by an ephemeral
 * consumer in batches of 1,000 (records of a few hundred bytes: well under 1 MiB a fetch);
 * unreadable ones are skipped and logged as "unreadable <what> skipped".
 */
export async function replayJson<T>(
  nc: NatsConnection,
  stream: string,
  sinceMs: number,
  logger: Logger,
  what: string,
): Promise<T[]> {
  const consumer = await jetstream(nc).consumers.get(stream, {
    deliver_policy: DeliverPolicy.StartTime,
    opt_start_time: new Date(sinceMs).toISOString(),
  });
  const out: T[] = [];
  for (;;) {
    const batch = await consumer.fetch({ max_messages: 1_000, expires: 1_000 });
    let got = 0;
    let pending = 0;
    for await (const m of batch) {
      got++;
      pending = m.info.pending;
      try {
        out.push(m.json<T>());
      } catch (err) {
        logger.debug({ seq: m.seq, err: errorMessage(err) }, `unreadable ${what} skipped`);
      }
    }
    if (got === 0 || pending === 0) break;
  }
  await consumer.delete().catch(() => undefined);
  return out;
}

/** Raises a stream's replicas to at least `replicas`. */
export async function scaleStream(
  nc: NatsConnection,
  stream: string,
  replicas: number,
): Promise<void> {
  if (replicas <= 1) return;
  const jsm = await jetstreamManager(nc);
  const { config } = await jsm.streams.info(stream);
  if ((config.num_replicas ?? 1) < replicas)
    await jsm.streams.update(stream, { num_replicas: replicas });
}

/** Opens a KV bucket, creating it with `replicas` copies (default 1), scaling up an older one. */
export async function openKv(
  nc: NatsConnection,
  bucket: string,
  opts: Partial<KvOptions>,
  replicas = 1,
): Promise<KV> {
  const kv = await new Kvm(nc).create(bucket, { ...opts, replicas });
  await scaleStream(nc, `KV_${bucket}`, replicas);
  return kv;
}
