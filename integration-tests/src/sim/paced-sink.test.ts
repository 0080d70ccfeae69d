import assert from 'node:assert/strict';
import test from 'node:test';
import { Pacer, pacedSink } from './paced-sink.js';

test('nats-connections-are-opened-at-the-pace-not-all-at-once', async () => {
  const waits: number[] = [];
  const pacer = new Pacer(
    100,
    () => 0,
    async (ms) => void waits.push(ms),
  );
  // 50 agents started in the same turn of the loop.
  await Promise.all(Array.from({ length: 50 }, () => pacer.turn()));
  // 100 a second: the first at once, each next one 10 ms after the one before.
  assert.deepEqual(
    waits,
    Array.from({ length: 49 }, (_, i) => (i + 1) * 10),
  );
});

test('a-sink-before-its-turn-fails-as-not-connected-and-publishes-after', async () => {
  let release: () => void = () => undefined;
  const turn = new Promise<void>((r) => (release = r));
  const published: string[] = [];
  const sink = pacedSink(
    () => ({
      publish: async (subject) => void published.push(subject),
      close: async () => undefined,
    }),
    { turn: () => turn },
  );
  await assert.rejects(sink.publish('a', new Uint8Array(), 'id-1'), /not connected yet/);
  release();
  await turn;
  await new Promise((r) => setImmediate(r));
  await sink.publish('b', new Uint8Array(), 'id-2');
  assert.deepEqual(published, ['b']);
  await sink.close();
});
