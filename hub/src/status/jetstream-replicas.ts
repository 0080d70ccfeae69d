// How many copies NATS keeps of what the hub stores: every stream and KV bucket the hub
// creates gets `nats.replicas` (hub.yaml; 1 on a single server, 3 on a three-node
// cluster). One made earlier with fewer replicas is scaled up in place (JetStream copies
// it to the new peers); never down, which an operator may have chosen on purpose.
import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV, KvOptions } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';

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
