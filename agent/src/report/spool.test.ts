// The event buffer on disk: what waits survives a restart with its ids, what was accepted
// is never sent again, drops are bounded, counted across restarts and reported once.
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, it, mock } from 'node:test';
import { parseEvent, silentLogger } from '@flotilla/common';
import type { EventsDroppedData } from '@flotilla/common';
import { EventPublisher } from './publisher.js';
import type { EventSink } from './publisher.js';
import { EVENT_SPOOL_FILE, EventSpool, readSpool } from './spool.js';

const dirs: string[] = [];
// Publishers are closed after each test, passed or failed: one left retrying (a down sink,
// a 60 s retry) keeps the test process alive long after its assertion failed.
const publishers: EventPublisher[] = [];
afterEach(() => Promise.all(publishers.splice(0).map((p) => p.close(10))));
after(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'flotilla-spool-'));
  dirs.push(d);
  return d;
}

/** A sink that refuses everything while `down`, else records. */
class Sink implements EventSink {
  sent: { subject: string; id: string; data: unknown }[] = [];
  constructor(public down = false) {}
  async publish(subject: string, data: Uint8Array, msgID: string): Promise<void> {
    if (this.down) throw new Error('NATS unavailable');
    this.sent.push({ subject, id: msgID, data: parseEvent(data).event.data });
  }
  async close(): Promise<void> {}
}

async function until(fn: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !fn(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(fn(), `timed out waiting for ${what}`);
}

const publisher = (sink: EventSink, dir: string, extra: object = {}): EventPublisher => {
  const p = new EventPublisher(sink, {
    cluster: 'east',
    logger: silentLogger(),
    bufferDir: dir,
    retryInitialMs: 60_000,
    ...extra,
  });
  publishers.push(p);
  return p;
};

it('events-waiting-when-the-agent-dies-are-sent-after-a-restart-with-the-same-ids', async () => {
  const dir = tempDir();
  const dead = publisher(new Sink(true), dir);
  const ids = [1, 2, 3].map((n) => dead.publish('applied', { n }).id);
  // The process "dies" here: nothing more is written, nothing closed.
  const sink = new Sink();
  const restarted = publisher(sink, dir);
  await until(() => sink.sent.length === 3, 'the three events sent');
  assert.deepEqual(
    sink.sent.map((s) => s.id),
    ids,
  );
  assert.deepEqual(
    sink.sent.map((s) => s.data),
    [{ n: 1 }, { n: 2 }, { n: 3 }],
  );
  await restarted.close(10);
  await dead.close(10);
  // Accepted events are recorded as such: a third start sends nothing again.
  const again = new Sink();
  const third = publisher(again, dir);
  assert.equal(third.pending, 0);
  await third.close(10);
  assert.equal(again.sent.length, 0);
});

it('a-line-cut-short-by-a-kill-is-skipped-and-the-rest-kept', async () => {
  const dir = tempDir();
  const dead = publisher(new Sink(true), dir);
  const id = dead.publish('applied', { n: 1 }).id;
  appendFileSync(join(dir, EVENT_SPOOL_FILE), '{"s":"flotilla.events.east.applied","e":{"spec');
  const contents = readSpool(join(dir, EVENT_SPOOL_FILE));
  assert.deepEqual([contents.pending.map((p) => p.event.id), contents.unreadable], [[id], 1]);
  await dead.close(10);
});

it('a-full-buffer-drops-the-oldest-counts-across-restarts-and-reports-once', async () => {
  const dir = tempDir();
  const dead = publisher(new Sink(true), dir, { bufferSize: 2 });
  const ids = [1, 2, 3, 4, 5].map((n) => dead.publish('drift-detected', { n }).id);
  assert.deepEqual([dead.pending, dead.dropped], [2, 3]);
  const sink = new Sink();
  const restarted = publisher(sink, dir, { bufferSize: 2 });
  assert.equal(restarted.dropped, 3, 'the drops before the restart are still counted');
  await until(() => sink.sent.length === 3, 'the report and the two kept events');
  const [report, ...kept] = sink.sent;
  assert.equal(report?.subject, 'flotilla.events.east.events-dropped');
  assert.deepEqual(report?.data, {
    dropped: 3,
    total: 3,
    capacity: 2,
    capacityBytes: 16 * 1024 * 1024,
  } satisfies EventsDroppedData);
  assert.deepEqual(
    kept.map((s) => s.id),
    ids.slice(3),
  );
  await restarted.close(10);
  await dead.close(10);
  const again = new Sink();
  const third = publisher(again, dir, { bufferSize: 2 });
  assert.equal(third.dropped, 3);
  await third.close(10);
  assert.equal(again.sent.length, 0, 'a report already sent is not sent again');
});

it('the-buffer-is-bounded-in-bytes-as-well-as-events', async () => {
  const dir = tempDir();
  const p = publisher(new Sink(true), dir, { bufferMaxBytes: 3_000 });
  for (let i = 0; i < 10; i++) p.publish('applied', { text: 'x'.repeat(800) });
  assert.ok(p.pending >= 1 && p.pending <= 3, `${p.pending} events kept`);
  assert.equal(p.pending + p.dropped, 10);
  assert.equal(readSpool(join(dir, EVENT_SPOOL_FILE)).pending.length, p.pending);
  await p.close(10);
});

it('the-file-is-rewritten-with-only-what-waits-when-it-grows-past-its-bound', () => {
  const dir = tempDir();
  const { spool } = EventSpool.open(dir, 10_000);
  const pending = [];
  for (let i = 0; i < 100; i++) {
    const event = { id: `e${i}` } as never;
    const line = EventSpool.line('s', event);
    spool.append(line);
    if (i < 95) spool.accepted(`e${i}`);
    else pending.push({ subject: 's', event, bytes: line.length });
    spool.compactIfNeeded(pending);
  }
  spool.close();
  assert.ok(statSync(join(dir, EVENT_SPOOL_FILE)).size <= 10_000 + 200);
  assert.deepEqual(
    readSpool(join(dir, EVENT_SPOOL_FILE)).pending.map((p) => p.event.id),
    ['e95', 'e96', 'e97', 'e98', 'e99'],
  );
  assert.match(readFileSync(join(dir, EVENT_SPOOL_FILE), 'utf8'), /^\{"v":1,"id":"/);
});

it('the-flusher-paces-itself-after-a-burst', async () => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  try {
    const sink = new Sink();
    const p = new EventPublisher(sink, {
      cluster: 'east',
      logger: silentLogger(),
      paceEventsPerSecond: 10,
      paceBurst: 3,
    });
    for (let i = 0; i < 6; i++) p.publish('applied', { i });
    for (let i = 0; i < 20; i++) await Promise.resolve();
    assert.equal(sink.sent.length, 3, 'the burst goes at once');
    for (let t = 0; t < 3; t++) {
      mock.timers.tick(100);
      for (let i = 0; i < 20; i++) await Promise.resolve();
    }
    assert.equal(sink.sent.length, 6, 'then one every 100 ms');
    void p.close(0);
    mock.timers.tick(10);
  } finally {
    mock.timers.reset();
  }
});
