// Session events against a real nats-server: an events stream made by an older hub gets
// the session subjects, events buffered through an outage are published when NATS is
// back, and the durable consumer folds them into the status model and the history while
// refusing a session event published on an agent's subject.
import assert from 'node:assert/strict';
import test from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { EVENTS_STREAM, silentLogger, sleep } from '@flotilla/common';
import type { EventKind, FlotillaEvent } from '@flotilla/common';
import { requireEnv, startNats } from '@flotilla/test-env';
import { HistoryLog } from '../history/history-log.js';
import { EventsConsumer, ensureEventsStream } from './events-consumer.js';
import { FleetStatus } from './fleet-status.js';
import { NatsLink } from './nats-link.js';
import { sessionEvent } from './session-events.js';
import { SessionEventPublisher, jetStreamPublish } from './session-publisher.js';

const skip = await requireEnv(['nats']);

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const hello = {
  cluster: 'edge-1',
  agentVersion: '1.4.0',
  appliedDigest: 'sha256:d1',
  appliedRevision: 'r1',
  protocolVersion: 1,
};

test(
  'an-older-events-stream-gets-the-session-subjects-and-keeps-its-events',
  { skip },
  async () => {
    const nats = await startNats();
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: EVENTS_STREAM, subjects: ['flotilla.events.>'] });
      await jetstream(nc).publish('flotilla.events.edge-1.applied', '{}');
      await ensureEventsStream(nc);
      await ensureEventsStream(nc);
      const info = await jsm.streams.info(EVENTS_STREAM);
      assert.deepEqual(info.config.subjects, ['flotilla.events.>', 'flotilla.hub.sessions.>']);
      assert.equal(info.state.messages, 1);
    } finally {
      await nc.close();
      await nats.stop({ kill: true, removeStore: true });
    }
  },
);

test('sessions-buffered-through-an-outage-reach-status-and-history', { skip }, async () => {
  const nats = await startNats();
  await nats.stop();
  const link = new NatsLink({ url: nats.url, logger: silentLogger() });
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const history = new HistoryLog({ retentionMs: 86_400_000 });
  const publisher = new SessionEventPublisher({
    publish: jetStreamPublish(() => link.connection()),
    hubId: 'hub-a',
    logger: silentLogger(),
  });
  const consumer = new EventsConsumer({
    connection: () => link.connection(),
    sink: (k: EventKind, e: FlotillaEvent) => {
      history.add(k, e);
      return status.foldEvent(k, e);
    },
    logger: silentLogger(),
  });
  try {
    link.start();
    consumer.start();
    const observer = publisher.observe(status);
    observer.connected('edge-1', 's1', hello);
    observer.disconnected('edge-1', 's1', 'stream error: connection reset');
    observer.connected('edge-1', 's2', { ...hello, agentVersion: '1.5.0' });
    observer.seen('edge-1', 's2');
    assert.equal(publisher.buffered, 3, 'held while NATS is down; the stream went on');
    await nats.start();
    await publisher.idle();
    assert.deepEqual(publisher.counts, { published: 3, dropped: 0 });

    // An agent publishing a session event on its own subject is refused by the consumer.
    const nc = await link.connection();
    const forged = sessionEvent(
      'edge-1',
      'disconnected',
      {
        session: 's2',
        agentVersion: '1.5.0',
        reason: 'forged',
        hub: 'hub-a',
        appliedRevision: '',
        appliedDigest: '',
      },
      new Date(),
    );
    await jetstream(nc).publish('flotilla.events.edge-1.disconnected', JSON.stringify(forged));
    await until(
      () =>
        consumer.counters.folded + consumer.counters.stale === 3 &&
        consumer.counters.malformed === 1,
      'the three session events consumed and the forged one refused',
    );
    const c = status.get('edge-1');
    assert.equal(c?.connected, true, 'the live session s2 stays open');
    assert.equal(c?.agentVersion, '1.5.0');
    assert.equal(c?.lastDisconnectReason, 'stream error: connection reset');
    const entries = history.query({ cluster: 'edge-1', kinds: ['connected', 'disconnected'] });
    assert.deepEqual(
      entries.map((e) => [e.kind, e.session?.id, e.session?.agentVersion, e.session?.reason]),
      [
        ['connected', 's2', '1.5.0', ''],
        ['disconnected', 's1', '1.4.0', 'stream error: connection reset'],
        ['connected', 's1', '1.4.0', ''],
      ],
    );
  } finally {
    await publisher.stop(1_000);
    await consumer.stop();
    await link.stop();
    await nats.stop({ kill: true, removeStore: true });
  }
});
