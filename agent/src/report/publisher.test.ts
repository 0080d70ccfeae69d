import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { EVENTS_STREAM, EVENTS_SUBJECT_PREFIX, parseEvent, silentLogger } from '@flotilla/common';
import { EventPublisher } from './publisher.js';
import type { EventSink } from './publisher.js';
import { natsSink } from './nats-sink.js';
import { requireEnv, startNats } from '@flotilla/test-env';
import type { TestNats } from '@flotilla/test-env';

/** A sink that fails `failures` times, then records. */
class FlakySink implements EventSink {
  sent: { subject: string; id: string }[] = [];
  constructor(private failures: number) {}
  async publish(subject: string, _data: Uint8Array, msgID: string): Promise<void> {
    if (this.failures-- > 0) throw new Error('stream not found');
    this.sent.push({ subject, id: msgID });
  }
  async close(): Promise<void> {}
}

async function until(fn: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('event publisher', () => {
  it('events-wait-while-publishing-fails-and-are-flushed-in-order', async (t) => {
    const sink = new FlakySink(3);
    const p = new EventPublisher(sink, {
      cluster: 'east',
      logger: silentLogger(),
      retryInitialMs: 5,
      retryMaxMs: 10,
    });
    // Closed even when an assertion fails: a publisher left retrying keeps the process alive.
    t.after(() => p.close(10));
    const ids = [
      p.publish('applied', { n: 1 }).id,
      p.publish('apply-failed', { n: 2 }).id,
      p.publish('applied', { n: 3 }).id,
    ];
    await until(() => sink.sent.length === 3, 'flush');
    assert.deepEqual(
      sink.sent.map((s) => s.id),
      ids,
    );
    assert.equal(sink.sent[1]?.subject, 'flotilla.events.east.apply-failed');
    await p.close();
  });

  it('a-full-buffer-drops-the-oldest-events', async (t) => {
    const sink = new FlakySink(1_000_000);
    const p = new EventPublisher(sink, {
      cluster: 'east',
      logger: silentLogger(),
      bufferSize: 2,
      retryInitialMs: 1000,
    });
    t.after(() => p.close(10));
    for (let i = 0; i < 5; i++) p.publish('applied', { i });
    assert.deepEqual([p.pending, p.dropped], [2, 3]);
    await p.close(10);
  });
});

describe('event publisher (real nats-server)', { skip: await requireEnv(['nats']) }, () => {
  let nats: TestNats;
  let url: string;
  before(async () => {
    nats = await startNats();
    url = nats.url;
  });
  after(() => nats?.stop({ removeStore: true }));

  it('events-published-before-the-stream-exists-arrive-once-it-is-created', async (t) => {
    const p = new EventPublisher(
      natsSink({
        servers: url,
        name: 'test-agent',
        logger: silentLogger(),
        retryInitialMs: 50,
        retryMaxMs: 200,
        publishTimeoutMs: 500,
      }),
      {
        cluster: 'east',
        logger: silentLogger(),
        retryInitialMs: 50,
        retryMaxMs: 200,
      },
    );
    t.after(() => p.close(10));
    const first = p.publish('applied', { n: 1 });
    const second = p.publish('apply-failed', { n: 2 });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(p.pending, 2);
    // The hub creates the stream; here the test plays the hub.
    const nc = await connect({ servers: url });
    t.after(() => nc.close());
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: EVENTS_STREAM, subjects: [`${EVENTS_SUBJECT_PREFIX}.>`] });
    await until(() => p.pending === 0, 'flush to JetStream');
    const stored = [
      await jsm.streams.getMessage(EVENTS_STREAM, { seq: 1 }),
      await jsm.streams.getMessage(EVENTS_STREAM, { seq: 2 }),
    ];
    assert.deepEqual(
      stored.map((m) => m && parseEvent(m.data).event.id),
      [first.id, second.id],
    );
    assert.equal(stored[0]?.subject, 'flotilla.events.east.applied');
    await p.close();
    await nc.close();
  });
});
