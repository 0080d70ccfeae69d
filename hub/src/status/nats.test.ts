// Status against a real nats-server: events consumer, stream creation, KV persistence.
import assert from 'node:assert/strict';
import test from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { createEvent, EVENTS_STREAM, eventSubject, silentLogger, sleep } from '@flotilla/common';
import type { AppliedData } from '@flotilla/common';
import { EventsConsumer } from './events-consumer.js';
import { FleetStatus } from './fleet-status.js';
import { KvStatusPersistence } from './kv-persistence.js';
import { NatsLink } from './nats-link.js';
import { requireEnv, startNats } from '@flotilla/test-env';

const skip = await requireEnv(['nats']);

async function until(cond: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function appliedData(digest: string): AppliedData {
  return { revision: 'r1', digest, generation: 1, result: 'applied', durationMs: 1, bundles: [] };
}

test('events-are-folded-from-jetstream-and-malformed-ones-skipped', { skip }, async () => {
  const nats = await startNats();
  const link = new NatsLink({ url: nats.url, logger: silentLogger() });
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  status.setFleet([
    { name: 'edge-1', labels: {}, desired: { revision: 'r1', digest: 'sha256:d1' } },
  ]);
  status.connected('edge-1', 's1', {
    cluster: 'edge-1',
    agentVersion: '',
    appliedDigest: '',
    appliedRevision: '',
    protocolVersion: 1,
  });
  const consumer = new EventsConsumer({
    connection: () => link.connection(),
    sink: (k, e) => status.foldEvent(k, e),
    logger: silentLogger(),
  });
  try {
    link.start();
    consumer.start();
    await until(() => consumer.active, 'consumer');
    const nc = await link.connection();
    const info = await (await jetstreamManager(nc)).streams.info(EVENTS_STREAM);
    assert.deepEqual(
      info.config.subjects,
      ['flotilla.events.>', 'flotilla.hub.sessions.>'],
      'the hub created the stream',
    );
    const js = jetstream(nc);
    await js.publish(eventSubject('edge-1', 'applied'), 'not json', { msgID: 'bad-1' });
    const ev = createEvent('edge-1', 'applied', appliedData('sha256:d1'));
    await js.publish(eventSubject('edge-1', 'applied'), JSON.stringify(ev), { msgID: ev.id });
    // A retry of the same event within the duplicate window is dropped by JetStream.
    await js.publish(eventSubject('edge-1', 'applied'), JSON.stringify(ev), { msgID: ev.id });
    await until(
      () => consumer.counters.folded === 1 && consumer.counters.malformed === 1,
      'events',
    );
    assert.equal(status.get('edge-1')?.state, 'Ready');
  } finally {
    await consumer.stop();
    await link.stop();
    await nats.stop({ kill: true, removeStore: true });
  }
});

test('status-survives-a-hub-restart-through-kv', { skip }, async () => {
  const nats = await startNats();
  try {
    for (const round of [1, 2]) {
      const link = new NatsLink({ url: nats.url, logger: silentLogger() });
      link.start();
      const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
      const kv = new KvStatusPersistence({
        connection: () => link.connection(),
        isConnected: () => link.connected,
        status,
        logger: silentLogger(),
      });
      await link.connection();
      const restored = await kv.restore();
      if (round === 1) {
        assert.equal(restored, 0);
        status.setFleet([
          {
            name: 'edge-1',
            labels: { env: 'prod' },
            desired: { revision: 'r1', digest: 'sha256:d1' },
          },
        ]);
        status.connected('edge-1', 's1', {
          cluster: 'edge-1',
          agentVersion: '',
          appliedDigest: 'sha256:d1',
          appliedRevision: 'r1',
          protocolVersion: 1,
        });
        await kv.flush();
      } else {
        assert.equal(restored, 1);
        const c = status.get('edge-1');
        assert.equal(c?.appliedDigest, 'sha256:d1');
        assert.deepEqual(c?.labels, { env: 'prod' });
        assert.equal(c?.connected, false, 'nobody is connected to a fresh hub');
      }
      await kv.stop();
      await link.stop();
    }
  } finally {
    await nats.stop({ kill: true, removeStore: true });
  }
});

test('nats-down-at-start-is-retried-until-it-comes-up', { skip }, async () => {
  const nats = await startNats();
  await nats.stop({ kill: true });
  const link = new NatsLink({ url: nats.url, logger: silentLogger() });
  try {
    link.start();
    await sleep(300);
    assert.equal(link.connected, false);
    await nats.start();
    await until(() => link.connected, 'reconnect', 10_000);
  } finally {
    await link.stop();
    await nats.stop({ kill: true, removeStore: true });
  }
});
