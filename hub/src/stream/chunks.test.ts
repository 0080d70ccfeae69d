import assert from 'node:assert/strict';
import test from 'node:test';
import { gunzipSync } from 'node:zlib';
import { bundleDigest, desiredStateDigest } from '@flotilla/common';
import type { BundleDesiredState, DesiredState, KubeObject } from '@flotilla/common';
import {
  BundleMembers,
  EncodingCache,
  MAX_CHUNK_BYTES,
  decodeDesiredState,
  encodeDesiredState,
  encodeDesiredStateSync,
} from './chunks.js';
import { configMap, desiredState } from './fixtures.js';

function bundle(name: string, objects: KubeObject[]): BundleDesiredState {
  const b = {
    name,
    drift: { mode: 'enforce' as const, ignore: [] },
    forceConflicts: true,
    objects,
  };
  return { ...b, digest: bundleDigest(b) };
}

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

test('an-encoding-holds-only-its-own-bytes-not-zlibs-16-kib-output-chunk', async () => {
  const state = desiredState('c1', 'r1', [configMap('a', 3_000)]);
  for (const enc of [encodeDesiredStateSync(state), await encodeDesiredState(state)]) {
    assert.ok(enc.compressedSize < 8_000, `compressed ${enc.compressedSize} bytes`);
    assert.equal(enc.slices[0]?.buffer.byteLength, enc.compressedSize);
  }
});

test('a-sent-encoding-is-released-unless-a-newer-one-replaced-it', async () => {
  const cache = new EncodingCache();
  const r1 = desiredState('c1', 'r1');
  await cache.get(r1);
  await cache.get(desiredState('c2', 'r1'));
  cache.release(desiredState('c2', 'r0'));
  assert.equal(cache.size, 2, 'an older state releases nothing');
  cache.release(r1);
  assert.equal(cache.size, 1);
  await cache.get(r1);
  assert.equal(cache.encodeCount, 3, 'a later session encodes it again');
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

test('a-fleet-of-encodings-is-done-in-turns-of-the-event-loop-and-every-one-resolves', async () => {
  const busy = (ms: number) => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  const cache = new EncodingCache({
    budgetMs: 5,
    encode: (state) => {
      busy(2);
      return encodeDesiredStateSync(state);
    },
  });
  const states = Array.from({ length: 20 }, (_, i) => desiredState(`c${i}`, 'r1'));
  const pending = states.map((s) => cache.get(s));
  // Something else waiting on the loop (a heartbeat, a query) runs before the fleet is done.
  let doneWhenOtherRan = -1;
  setImmediate(() => setImmediate(() => (doneWhenOtherRan = 20 - cache.pending)));
  const encoded = await Promise.all(pending);
  assert.ok(
    doneWhenOtherRan >= 1 && doneWhenOtherRan < 20,
    `other work ran after ${doneWhenOtherRan} of 20 encodings`,
  );
  assert.equal(cache.encodeCount, 20);
  assert.equal(cache.pending, 0);
  assert.deepEqual(
    encoded.map((e) => e.digest),
    states.map((s) => s.digest),
  );
  const round = await decodeDesiredState(
    encoded[3]!.slices.map((data, index) => ({
      digest: encoded[3]!.digest,
      index,
      total: encoded[3]!.slices.length,
      data,
      compressedSize: encoded[3]!.compressedSize,
    })),
  );
  assert.deepEqual(round, states[3]);
});

test('an-encoding-that-throws-rejects-and-the-next-one-is-still-done', async () => {
  const cache = new EncodingCache({
    encode: (state) => {
      if (state.cluster === 'bad') throw new Error('cannot encode');
      return encodeDesiredStateSync(state);
    },
  });
  const bad = cache.get(desiredState('bad', 'r1'));
  const good = cache.get(desiredState('good', 'r1'));
  await assert.rejects(bad, /cannot encode/);
  assert.equal((await good).revision, 'r1');
});

/** A fleet where every cluster gets one bundle of its own and two bundles shared by all. */
function fleetSharing(n: number): DesiredState[] {
  const shared = [
    bundle('shared-a', [configMap('a', 2_000, 7)]),
    bundle('shared-b', [configMap('b', 2_000, 9)]),
  ];
  return Array.from({ length: n }, (_, i) => {
    const own = bundle('own', [configMap(`own-${i}`, 500, i + 1)]);
    const bundles = [own, ...shared];
    return {
      cluster: `c${i}`,
      revision: 'r1',
      digest: desiredStateDigest(`c${i}`, bundles),
      bundles,
      prune: { maxShare: 0.5 },
    };
  });
}

test('a-bundle-shared-by-many-clusters-is-compressed-once-and-every-state-round-trips', async () => {
  const cache = new EncodingCache();
  const states = fleetSharing(20);
  const encoded = await Promise.all(states.map((s) => cache.get(s)));
  assert.equal(cache.encodeCount, 20, 'each cluster has its own state');
  // The first state carries the shared bundles inline; the second compresses them once.
  assert.equal(cache.members.compressed, 2);
  assert.equal(cache.members.reused, 2 * 18);
  for (const [i, e] of encoded.entries()) {
    const chunks = e.slices.map((data, index) => ({
      digest: e.digest,
      index,
      total: e.slices.length,
      data,
      compressedSize: e.compressedSize,
    }));
    assert.deepEqual(await decodeDesiredState(chunks), states[i]);
    // What agents run: one synchronous gunzip of the whole payload.
    assert.deepEqual(JSON.parse(gunzipSync(Buffer.concat(e.slices)).toString()), states[i]);
  }
});

test('a-bundle-of-one-cluster-is-not-kept-between-states', () => {
  const members = new BundleMembers();
  for (const s of fleetSharing(5)) encodeDesiredStateSync(s, MAX_CHUNK_BYTES, members);
  assert.equal(members.compressed, 2, 'only the shared bundles got members of their own');
});

test('shared-members-are-cut-into-chunks-like-any-payload', async () => {
  const states = fleetSharing(3);
  const members = new BundleMembers();
  for (const s of states) {
    const e = encodeDesiredStateSync(s, 512, members);
    assert.ok(e.slices.length > 1 && e.slices.every((x) => x.length <= 512));
    const chunks = e.slices.map((data, index) => ({
      digest: e.digest,
      index,
      total: e.slices.length,
      data,
      compressedSize: e.compressedSize,
    }));
    assert.deepEqual(await decodeDesiredState(chunks), s);
  }
});
