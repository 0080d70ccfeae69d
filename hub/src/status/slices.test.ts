// Work that a fan-out makes for every cluster at once is done in slices, one per turn of
// the event loop, so that queries are answered between them: change notifications
// (NOTIFY_SLICE) and the KV writes of a status flush (FLUSH_SLICE, against a real
// nats-server), and the serialization of those records. Every cluster is still told
// once, in order, and every record written before the events are acked.
import assert from 'node:assert/strict';
import test from 'node:test';
import type { KV } from '@nats-io/kv';
import { silentLogger } from '@flotilla/common';
import { requireEnv, startNats } from '@flotilla/test-env';
import { FleetStatus, NOTIFY_SLICE } from './fleet-status.js';
import type { FleetEntry } from './fleet-status.js';
import { FLUSH_SLICE, KvStatusPersistence, openStatusBucket } from './kv-persistence.js';
import { NatsLink } from './nats-link.js';

const skip = await requireEnv(['nats']);
const N = 250;
const names = Array.from({ length: N }, (_, i) => `edge-${String(i).padStart(3, '0')}`);

const fleet = (revision: string): FleetEntry[] =>
  names.map((name) => ({
    name,
    labels: { env: 'prod' },
    desired: { revision: revision.padEnd(40, '0'), digest: `sha256:${revision}` },
  }));

// Counts turns of the event loop (check phases) until stopped.
function turns(): { now(): number; stop(): void } {
  let n = 0;
  let on = true;
  const next = (): void => {
    if (!on) return;
    n++;
    setImmediate(next);
  };
  setImmediate(next);
  return { now: () => n, stop: () => void (on = false) };
}

test('a-change-of-every-cluster-is-told-in-slices-each-cluster-once-in-order', async () => {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  status.setFleet(fleet('rev-1'));
  const told: { name: string; turn: number }[] = [];
  const clock = turns();
  status.onChange((c) => told.push({ name: c.name, turn: clock.now() }));
  status.setFleet(fleet('rev-2'));
  for (let i = 0; i < 20 && told.length < N; i++) await new Promise((r) => setImmediate(r));
  clock.stop();
  assert.deepEqual(
    told.map((t) => t.name),
    names,
    'every cluster told once, in the order of its change',
  );
  const perTurn = new Map<number, number>();
  for (const t of told) perTurn.set(t.turn, (perTurn.get(t.turn) ?? 0) + 1);
  assert.ok(
    Math.max(...perTurn.values()) <= NOTIFY_SLICE,
    `at most ${NOTIFY_SLICE} per turn (${[...perTurn.values()].join(', ')})`,
  );
  assert.ok(perTurn.size >= Math.ceil(N / NOTIFY_SLICE), `over ${perTurn.size} turns`);
});

test(
  'a-flush-of-every-record-starts-its-writes-in-slices-and-acks-after-all',
  { skip },
  async () => {
    const nats = await startNats();
    const link = new NatsLink({ url: nats.url, logger: silentLogger() });
    try {
      link.start();
      const nc = await link.connection();
      const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
      status.setFleet(fleet('rev-1'));
      // The persistence's bucket, its put() watched: which turn each write started in.
      const bucket: KV = await openStatusBucket(nc);
      const started: number[] = [];
      let clock = turns();
      const put = bucket.put.bind(bucket);
      let committedAfter = -1;
      const kv = new KvStatusPersistence({
        connection: () => link.connection(),
        isConnected: () => link.connected,
        status,
        logger: silentLogger(),
        checkpoint: () => ({ commit: () => void (committedAfter = started.length) }),
      });
      (kv as unknown as { kv: KV }).kv = Object.assign(Object.create(bucket) as KV, {
        put: (k: string, v: string) => {
          started.push(clock.now());
          return put(k, v);
        },
      });
      await kv.flush();
      clock.stop();
      assert.equal(started.length, N, 'every dirty record written');
      assert.equal(committedAfter, N, 'the checkpoint is committed after every write');
      const perTurn = new Map<number, number>();
      for (const t of started) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
      assert.ok(
        Math.max(...perTurn.values()) <= FLUSH_SLICE,
        `at most ${FLUSH_SLICE} writes started per turn (${[...perTurn.values()].join(', ')})`,
      );
      for (const name of [names[0], names[N - 1]] as string[])
        assert.ok((await bucket.get(name))?.string().includes(name), `${name} is in the bucket`);
      // Nothing dirty: a second flush writes nothing and still commits.
      clock = turns();
      await kv.flush();
      clock.stop();
      assert.equal(started.length, N);
    } finally {
      await link.stop();
      await nats.stop();
    }
  },
);

test(
  'a-flush-serializes-its-records-in-slices-and-a-record-changed-meanwhile-is-written-again',
  { skip },
  async () => {
    const nats = await startNats();
    const link = new NatsLink({ url: nats.url, logger: silentLogger() });
    try {
      link.start();
      await link.connection();
      const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
      status.setFleet(fleet('rev-1'));
      // Each record taken reports the turn in which it is serialized (JSON.stringify reads
      // its labels; nothing else in a flush does).
      const serializedIn = new Map<string, number>();
      let clock = turns();
      const take = status.takeDirty.bind(status);
      status.takeDirty = () =>
        take().map((rec) => {
          let labels = rec.labels;
          Object.defineProperty(rec, 'labels', {
            enumerable: true,
            configurable: true,
            get: () => (serializedIn.set(rec.name, clock.now()), labels),
            set: (v: Record<string, string>) => void (labels = v),
          });
          return rec;
        });
      const kv = new KvStatusPersistence({
        connection: () => link.connection(),
        isConnected: () => link.connected,
        status,
        logger: silentLogger(),
      });
      const last = names[N - 1] as string;
      const flushing = kv.flush();
      // A change of the last record while the first slice is written: after the flush
      // took it, before its slice.
      await new Promise((r) => setImmediate(r));
      status.setFleet(
        fleet('rev-1').map((e) => (e.name === last ? { ...e, labels: { env: 'staging' } } : e)),
      );
      await flushing;
      clock.stop();
      assert.equal(serializedIn.size, N, 'every dirty record serialized');
      const perTurn = new Map<number, number>();
      for (const t of serializedIn.values()) perTurn.set(t, (perTurn.get(t) ?? 0) + 1);
      assert.ok(
        Math.max(...perTurn.values()) <= FLUSH_SLICE,
        `at most ${FLUSH_SLICE} records serialized per turn (${[...perTurn.values()].join(', ')})`,
      );
      // The change made the record dirty again: the next flush writes what it now holds.
      clock = turns();
      await kv.flush();
      clock.stop();
      const bucket = await openStatusBucket(await link.connection());
      const saved = (await bucket.get(last))?.json<{ labels: Record<string, string> }>();
      assert.deepEqual(saved?.labels, { env: 'staging' });
    } finally {
      await link.stop();
      await nats.stop();
    }
  },
);
