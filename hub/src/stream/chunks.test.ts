import assert from 'node:assert/strict';
import test from 'node:test';
import {
  EncodingCache,
  MAX_CHUNK_BYTES,
  decodeDesiredState,
  encodeDesiredState,
} from './chunks.js';
import { configMap, desiredState } from './fixtures.js';

test('large-state-travels-as-several-1mib-chunks-and-round-trips', async () => {
  const objects = Array.from({ length: 6 }, (_, i) => configMap(`big-${i}`, 900_000, i + 1));
  const state = desiredState('edge-1', 'a'.repeat(40), objects);
  assert.ok(JSON.stringify(state).length > 4 * 1024 * 1024);
  const enc = await encodeDesiredState(state);
  assert.ok(enc.slices.length >= 3, `expected several chunks, got ${enc.slices.length}`);
  assert.ok(enc.slices.every((s) => s.length <= MAX_CHUNK_BYTES));
  const chunks = enc.slices.map((data, index) => ({
    digest: enc.digest,
    index,
    total: enc.slices.length,
    data,
    compressedSize: enc.compressedSize,
  }));
  assert.deepEqual(await decodeDesiredState(chunks), state);
});

test('missing-chunk-is-detected', async () => {
  const enc = await encodeDesiredState(desiredState('c1', 'r1'), 64);
  const chunks = enc.slices.map((data, index) => ({
    digest: enc.digest,
    index,
    total: enc.slices.length,
    data,
    compressedSize: enc.compressedSize,
  }));
  await assert.rejects(decodeDesiredState(chunks.slice(1)), /chunks|sequence/);
});

test('same-state-for-many-sessions-is-compressed-once', async () => {
  const cache = new EncodingCache();
  const state = desiredState('c1', 'r1');
  const all = await Promise.all(Array.from({ length: 50 }, () => cache.get(state)));
  assert.equal(cache.encodeCount, 1);
  assert.ok(all.every((e) => e === all[0]));
  await cache.get(desiredState('c1', 'r2'));
  assert.equal(cache.encodeCount, 2, 'a new revision is a new payload');
});

test('a-fleet-of-encodings-runs-a-few-at-a-time-and-every-one-resolves', async () => {
  let inFlight = 0;
  let most = 0;
  const cache = new EncodingCache({
    concurrency: 2,
    encode: async (state) => {
      inFlight++;
      most = Math.max(most, inFlight);
      try {
        await new Promise((r) => setTimeout(r, 2));
        return await encodeDesiredState(state);
      } finally {
        inFlight--;
      }
    },
  });
  const states = Array.from({ length: 20 }, (_, i) => desiredState(`c${i}`, 'r1'));
  const encoded = await Promise.all(states.map((s) => cache.get(s)));
  assert.equal(most, 2, 'never more than the concurrency in flight');
  assert.equal(cache.encodeCount, 20);
  assert.equal(cache.pending, 0);
  assert.deepEqual(
    encoded.map((e) => e.digest),
    states.map((s) => s.digest),
  );
});

test('an-encoding-that-throws-rejects-and-frees-its-turn', async () => {
  const cache = new EncodingCache({
    concurrency: 1,
    encode: (state) => {
      if (state.cluster === 'bad') throw new Error('cannot encode');
      return encodeDesiredState(state);
    },
  });
  await assert.rejects(cache.get(desiredState('bad', 'r1')), /cannot encode/);
  const ok = await cache.get(desiredState('good', 'r1'));
  assert.equal(ok.revision, 'r1');
});
