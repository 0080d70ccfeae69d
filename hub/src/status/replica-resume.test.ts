// Hub replicas against a real nats-server: a replica that does not hold the lease acks
// the events it folds without saving them (the holder saves status), so after a restart
// it restores the holder's save and must fold again every event that save does not hold,
// even those it acked itself. Found by the chaos soak: restarted replicas counted 0.5 to
// 0.7 % fewer drift detections than were published, for good.
import assert from 'node:assert/strict';
import test from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { EVENTS_STREAM, eventSubject, silentLogger, sleep } from '@flotilla/common';
import { requireEnv, startNats } from '@flotilla/test-env';
import { EventsConsumer } from './events-consumer.js';
import { FleetStatus } from './fleet-status.js';
import { KvStatusPersistence } from './kv-persistence.js';
import { NatsLink } from './nats-link.js';
import { driftEvent } from './testing.js';

const skip = await requireEnv(['nats']);

async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Drift detections on `count` distinct objects of bundle "web", from t0 on. */
async function publishDrift(nc: NatsConnection, t0: number, count: number): Promise<void> {
  const js = jetstream(nc);
  for (let i = 0; i < count; i++) {
    const ev = driftEvent('edge-1', 'web', new Date(t0 + i), { name: `obj-${t0 + i}` });
    await js.publish(eventSubject('edge-1', 'drift-detected'), JSON.stringify(ev), {
      msgID: ev.id,
    });
  }
}

// Consumers started by a test, stopped at its end whatever happened.
const running: EventsConsumer[] = [];

/** One replica's status, consumer and persistence, as HubApp wires them. */
function replica(link: NatsLink, name: string, holds: () => boolean) {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  // The fleet repo declares edge-1 running bundle "web" (deployments list declared bundles).
  status.setFleet([
    {
      name: 'edge-1',
      labels: {},
      desired: { revision: 'r1', digest: 'd1', bundles: [{ name: 'web', digest: 'w1' }] },
    },
  ]);
  const kv: KvStatusPersistence = new KvStatusPersistence({
    connection: () => link.connection(),
    isConnected: () => link.connected,
    status,
    logger: silentLogger(),
    checkpoint: () => consumer.checkpoint(),
    writes: holds,
  });
  const consumer: EventsConsumer = new EventsConsumer({
    connection: () => link.connection(),
    sink: (k, e) => status.foldEvent(k, e),
    logger: silentLogger(),
    durable: `replica-resume-${name}`,
    ackAfterSave: true,
    resumeAfter: () => kv.eventsSeq,
  });
  running.push(consumer);
  const driftCounted = (): number =>
    status.deployments({ cluster: 'edge-1' }).reduce((n, d) => n + d.driftEvents, 0);
  return { status, consumer, kv, driftCounted };
}

test(
  'a-restarted-replica-folds-again-the-events-it-acked-that-the-saved-status-lacks',
  { skip },
  async () => {
    const nats = await startNats();
    const link = new NatsLink({ url: nats.url, logger: silentLogger() });
    try {
      link.start();
      const nc = await link.connection();
      const jsm = await jetstreamManager(nc);
      const holder = replica(link, 'a', () => true);
      const follower = replica(link, 'b', () => false);
      holder.consumer.start();
      follower.consumer.start();
      await until(() => holder.consumer.active && follower.consumer.active, 'consumers');

      await publishDrift(nc, 1_000, 3);
      await until(() => holder.driftCounted() === 3 && follower.driftCounted() === 3, 'folded');
      await holder.kv.flush();
      // The holder falls behind (busy, or killed and not yet back): the next events are
      // folded by the follower alone, which acks them as the holder would save them.
      await holder.consumer.stop();
      await publishDrift(nc, 2_000, 3);
      await until(() => follower.driftCounted() === 6, 'the follower folded the new events');
      await follower.kv.flush();
      const info = () => jsm.consumers.info(EVENTS_STREAM, 'replica-resume-b');
      // The ack is sent, not awaited: the server takes it a moment later.
      await until(
        async () => (await info()).ack_floor.stream_seq === 6,
        'the follower acked every event it folded',
      );

      // The follower is killed and starts again from the holder's save (3 detections).
      await follower.consumer.stop();
      const restarted = replica(link, 'b', () => false);
      assert.equal(await restarted.kv.restore(), 1);
      assert.equal(restarted.kv.eventsSeq, 3, 'the save holds the first three events');
      assert.equal(restarted.driftCounted(), 3);
      restarted.consumer.start();
      await until(() => restarted.consumer.counters.folded >= 3, 'the acked events folded again');
      assert.equal(restarted.driftCounted(), 6, 'every detection published is counted');

      // Events the save already holds, folded again, are not counted twice.
      const again = replica(link, 'c', () => false);
      await again.kv.restore();
      again.consumer.start();
      const seen = () => again.consumer.counters.folded + again.consumer.counters.stale;
      await until(() => seen() === 6, 'a new replica read the whole stream');
      assert.equal(
        again.driftCounted(),
        6,
        'a new replica folding the whole stream counts each once',
      );
      await Promise.all([restarted.consumer.stop(), again.consumer.stop()]);
    } finally {
      await Promise.all(running.splice(0).map((c) => c.stop()));
      await link.stop();
      await nats.stop({ kill: true, removeStore: true });
    }
  },
);

test('an-empty-status-bucket-holds-no-event', { skip }, async () => {
  const nats = await startNats();
  const link = new NatsLink({ url: nats.url, logger: silentLogger() });
  try {
    link.start();
    const nc = await link.connection();
    // Two followers and no holder yet: nobody has saved anything.
    const follower = replica(link, 'b', () => false);
    await follower.kv.restore();
    assert.equal(follower.kv.eventsSeq, 0);
    follower.consumer.start();
    await until(() => follower.consumer.active, 'consumer');
    await publishDrift(nc, 1_000, 2);
    await until(() => follower.driftCounted() === 2, 'folded');
    await follower.kv.flush();
    await follower.consumer.stop();
    const restarted = replica(link, 'b', () => false);
    assert.equal(await restarted.kv.restore(), 0);
    restarted.consumer.start();
    await until(() => restarted.driftCounted() === 2, 'the acked events folded again');
    await restarted.consumer.stop();
  } finally {
    await Promise.all(running.splice(0).map((c) => c.stop()));
    await link.stop();
    await nats.stop({ kill: true, removeStore: true });
  }
});
