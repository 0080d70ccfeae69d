// Persist, then ack, against a real nats-server: events stay unacked until the status
// holding them is saved to KV, and a hub that dies before saving gets them again at once.
import assert from 'node:assert/strict';
import test from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { createEvent, EVENTS_STREAM, eventSubject, silentLogger, sleep } from '@flotilla/common';
import type { AppliedData } from '@flotilla/common';
import { EventsConsumer } from './events-consumer.js';
import { FleetStatus } from './fleet-status.js';
import { KvStatusPersistence } from './kv-persistence.js';
import { NatsLink } from './nats-link.js';
import { requireEnv, startNats } from '@flotilla/test-env';

const skip = await requireEnv(['nats']);
const DURABLE = 'persist-then-ack';

async function until(
  cond: () => boolean | Promise<boolean>,
  what: string,
  ms = 5_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function applied(cluster: string, atMs: number) {
  const data: AppliedData = {
    revision: 'r1',
    digest: `sha256:${atMs}`,
    generation: 1,
    result: 'applied',
    durationMs: 1,
    bundles: [],
  };
  return createEvent(cluster, 'applied', data, new Date(atMs));
}

async function publish(nc: NatsConnection, clusters: string[], atMs: number): Promise<void> {
  const js = jetstream(nc);
  for (const c of clusters) {
    const ev = applied(c, atMs);
    await js.publish(eventSubject(c, 'applied'), JSON.stringify(ev), { msgID: ev.id });
  }
}

function hub(link: NatsLink) {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  // Built before the persistence that commits its checkpoints; onBacklog is not reached here.
  const consumer: EventsConsumer = new EventsConsumer({
    connection: () => link.connection(),
    sink: (k, e) => status.foldEvent(k, e),
    logger: silentLogger(),
    durable: DURABLE,
    ackAfterSave: true,
  });
  // No start(): the test decides when a save happens.
  const kv = new KvStatusPersistence({
    connection: () => link.connection(),
    isConnected: () => link.connected,
    status,
    logger: silentLogger(),
    checkpoint: () => consumer.checkpoint(),
  });
  return { status, consumer, kv };
}

test('events-are-acked-only-after-the-status-holding-them-is-saved', { skip }, async () => {
  const nats = await startNats();
  const link = new NatsLink({ url: nats.url, logger: silentLogger() });
  const clusters = ['edge-1', 'edge-2', 'edge-3'];
  try {
    link.start();
    const nc = await link.connection();
    const jsm = await jetstreamManager(nc);
    const pending = async () => (await jsm.consumers.info(EVENTS_STREAM, DURABLE)).num_ack_pending;
    const first = hub(link);
    first.consumer.start();
    await until(() => first.consumer.active, 'first consumer');
    await publish(nc, clusters, 1_000);
    await until(() => first.consumer.counters.folded === 3, 'first events folded');
    assert.equal(await pending(), 3, 'folded but not saved: not acked');
    await first.kv.flush();
    await until(async () => (await pending()) === 0, 'acked after the save');

    // Folded, never saved, and the hub dies (no save on the way out).
    await publish(nc, clusters, 2_000);
    await until(() => first.consumer.counters.folded === 6, 'second events folded');
    await first.consumer.stop();
    assert.equal(await pending(), 3, 'the unsaved events are still unacked');

    const second = hub(link);
    assert.equal(await second.kv.restore(), 3);
    assert.deepEqual(
      clusters.map((c) => second.status.get(c)?.appliedDigest),
      ['sha256:1000', 'sha256:1000', 'sha256:1000'],
      'KV holds what was saved',
    );
    second.consumer.start();
    // Redelivered at once (the consumer is made again from its ack floor), not after ack_wait.
    await until(
      () => second.consumer.counters.folded === 3,
      'unsaved events redelivered to the next hub',
      5_000,
    );
    assert.deepEqual(
      clusters.map((c) => second.status.get(c)?.appliedDigest),
      ['sha256:2000', 'sha256:2000', 'sha256:2000'],
    );
    await second.consumer.stop();
    await second.kv.stop();
    await until(async () => (await pending()) === 0, 'acked after the last save');
  } finally {
    await link.stop();
    await nats.stop({ kill: true, removeStore: true });
  }
});

test(
  'a-record-that-cannot-be-saved-never-holds-back-the-acks-of-other-clusters',
  { skip },
  async () => {
    const nats = await startNats();
    const link = new NatsLink({ url: nats.url, logger: silentLogger() });
    try {
      link.start();
      const nc = await link.connection();
      const jsm = await jetstreamManager(nc);
      const pending = async () =>
        (await jsm.consumers.info(EVENTS_STREAM, DURABLE)).num_ack_pending;
      const h = hub(link);
      // A fleet repo giving one cluster 20,000 bundles: its record is megabytes, whatever is shrunk.
      const bundles = Array.from({ length: 20_000 }, (_, i) => ({
        name: `bundle-${String(i).padStart(5, '0')}-${'x'.repeat(40)}`,
        digest: `sha256:${i}`,
      }));
      h.status.setFleet([
        { name: 'huge', labels: {}, desired: { revision: 'r1', digest: 'sha256:h', bundles } },
        { name: 'edge-1', labels: {}, desired: { revision: 'r1', digest: 'sha256:1000' } },
      ]);
      h.consumer.start();
      await until(() => h.consumer.active, 'consumer');
      await publish(nc, ['huge', 'edge-1'], 1_000);
      await until(() => h.consumer.counters.folded === 2, 'events folded');
      await h.kv.flush();
      await until(async () => (await pending()) === 0, "every event acked, the huge cluster's too");
      assert.match(
        h.status.get('huge')?.degraded ?? '',
        /^status not saved: record over the \d+-byte budget even when shrunk$/,
      );
      assert.equal(h.status.get('edge-1')?.degraded, '');
      const restored = hub(link);
      assert.equal(await restored.kv.restore(), 1, 'the other cluster was saved');
      assert.equal(restored.status.get('edge-1')?.appliedDigest, 'sha256:1000');
      await h.consumer.stop();
    } finally {
      await link.stop();
      await nats.stop({ kill: true, removeStore: true });
    }
  },
);

test('records-of-removed-clusters-no-agent-used-leave-the-bucket-too', { skip }, async () => {
  const nats = await startNats();
  const link = new NatsLink({ url: nats.url, logger: silentLogger() });
  try {
    link.start();
    await link.connection();
    await until(() => link.connected, 'connected to NATS');
    const first = hub(link);
    const rev = 'r1'.padEnd(40, '0');
    const entry = (name: string) => ({ name, labels: {}, desired: { revision: rev, digest: 'd' } });
    first.status.setFleet(['edge-1', 'bogus-1', 'bogus-2'].map(entry));
    first.status.connected('edge-1', 's1', {
      cluster: 'edge-1',
      agentVersion: 't',
      appliedDigest: '',
      appliedRevision: '',
      protocolVersion: 1,
    });
    await first.kv.flush();
    const second = hub(link);
    assert.equal(await second.kv.restore(), 3);

    // The bogus files are removed: their records go, from the bucket as well.
    first.status.setFleet([]);
    await first.kv.flush();
    const third = hub(link);
    assert.equal(await third.kv.restore(), 1);
    assert.deepEqual(
      third.status.list().map((c) => c.name),
      ['edge-1'],
    );
    await first.kv.stop();
  } finally {
    await link.stop();
    await nats.stop({ kill: true, removeStore: true });
  }
});
