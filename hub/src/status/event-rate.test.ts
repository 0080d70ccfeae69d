import assert from 'node:assert/strict';
import test from 'node:test';
import { ClusterEventRate } from './event-rate.js';

test('a-cluster-over-its-burst-is-limited-and-the-others-are-not', () => {
  const limited: string[] = [];
  const rate = new ClusterEventRate({
    perSecond: 10,
    burst: 50,
    onLimited: (c) => limited.push(c),
  });
  let admitted = 0;
  // 1,000 events stored within the same millisecond: the burst passes, the rest does not.
  for (let i = 0; i < 1_000; i++) if (rate.admit('rogue', 1_000)) admitted++;
  assert.equal(admitted, 50);
  assert.equal(limited.length, 950);
  assert.ok(limited.every((c) => c === 'rogue'));
  assert.equal(rate.admit('good', 1_000), true, 'another cluster has its own bucket');
});

test('the-rate-follows-the-time-events-were-stored-not-read', () => {
  const rate = new ClusterEventRate({ perSecond: 10, burst: 20 });
  // A backlog of 600 events published at 10/s over a minute, read all at once: all pass.
  let admitted = 0;
  for (let i = 0; i < 600; i++) if (rate.admit('edge', 1_000 + i * 100)) admitted++;
  assert.equal(admitted, 600);
  // A redelivery of an older event does not refill the bucket backwards.
  for (let i = 0; i < 20; i++) rate.admit('edge', 61_000);
  assert.equal(rate.admit('edge', 5_000), false);
  // After a second, ten more.
  let later = 0;
  for (let i = 0; i < 20; i++) if (rate.admit('edge', 62_000)) later++;
  assert.equal(later, 10);
});
