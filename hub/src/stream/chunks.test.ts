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
