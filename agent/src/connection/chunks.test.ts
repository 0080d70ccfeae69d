import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { desiredStateDigest } from '@flotilla/common';
import { ChunkAssembler, decodeDesiredState } from './chunks.js';
import type { Chunk } from './chunks.js';
import { DesiredStateRejectedError } from './errors.js';
import { configMap, makeState } from '../testing/desired.js';

const state = makeState('east', 'abc123', [
  { name: 'web', objects: [configMap('web', 'a', { x: '1' })] },
]);

function chunksOf(
  value: unknown,
  generation: number,
  size: number,
  digest = state.digest,
): Chunk[] {
  const payload = gzipSync(JSON.stringify(value));
  const total = Math.ceil(payload.length / size);
  return Array.from({ length: total }, (_, index) => ({
    generation,
    digest,
    revision: 'abc123',
    index,
    total,
    data: payload.subarray(index * size, (index + 1) * size),
    compressedSize: payload.length,
  }));
}

describe('chunk reassembly', () => {
  it('a-payload-of-several-gzip-members-decodes-as-one-state', () => {
    // The hub compresses a bundle shared by many clusters once, as a member of its own.
    const [bundle] = state.bundles;
    const text = JSON.stringify(state);
    const at = text.indexOf(JSON.stringify(bundle));
    const payload = Buffer.concat([
      gzipSync(text.slice(0, at)),
      gzipSync(JSON.stringify(bundle)),
      gzipSync(text.slice(at + JSON.stringify(bundle).length)),
    ]);
    const assembled = new ChunkAssembler().add({
      generation: 1,
      digest: state.digest,
      revision: 'abc123',
      index: 0,
      total: 1,
      data: payload,
      compressedSize: payload.length,
    });
    assert.ok(assembled);
    assert.deepEqual(decodeDesiredState(assembled, 'east'), state);
  });

  it('the-prune-policy-is-covered-by-the-digest-an-added-opt-in-is-rejected', () => {
    const prune = { maxShare: 0.5 };
    const hubState = {
      ...state,
      prune,
      digest: desiredStateDigest('east', state.bundles, [], prune),
    };
    const ok = new ChunkAssembler().add(chunksOf(hubState, 1, 1_000_000, hubState.digest)[0]!);
    assert.deepEqual(decodeDesiredState(ok!, 'east').prune, prune);
    const forged = { ...hubState, prune: { maxShare: 0.5, allowMassPrune: true } };
    const bad = new ChunkAssembler().add(chunksOf(forged, 1, 1_000_000, hubState.digest)[0]!);
    assert.throws(() => decodeDesiredState(bad!, 'east'), DesiredStateRejectedError);
  });

  it('reassembles-chunks-in-any-order-and-verifies-the-digest', () => {
    const a = new ChunkAssembler();
    const chunks = chunksOf(state, 1, 40).reverse();
    assert.ok(chunks.length > 2);
    const results = chunks.map((c) => a.add(c));
    const done = results.at(-1);
    assert.ok(done);
    assert.equal(results.filter(Boolean).length, 1);
    assert.deepEqual(decodeDesiredState(done, 'east'), state);
  });

  it('a-newer-generation-discards-an-incomplete-older-one', () => {
    const a = new ChunkAssembler();
    const old = chunksOf(state, 1, 40);
    assert.equal(a.add(old[0] as Chunk), undefined);
    const fresh = chunksOf(state, 2, 1_000_000);
    const done = a.add(fresh[0] as Chunk);
    assert.equal(done?.generation, 2);
    assert.equal(a.add(old[1] as Chunk), undefined, 'late chunk of an old generation is ignored');
  });

  it('rejects-a-state-whose-content-does-not-match-the-announced-digest', () => {
    const tampered = { ...state, bundles: [{ ...state.bundles[0], objects: [] }] };
    const done = new ChunkAssembler().add(chunksOf(tampered, 1, 1_000_000)[0] as Chunk);
    assert.ok(done);
    assert.throws(() => decodeDesiredState(done, 'east'), DesiredStateRejectedError);
  });

  it('rejects-a-state-for-another-cluster', () => {
    const done = new ChunkAssembler().add(chunksOf(state, 1, 1_000_000)[0] as Chunk);
    assert.ok(done);
    assert.throws(() => decodeDesiredState(done, 'west'), /cluster "east"/);
  });

  it('rejects-an-announced-digest-that-differs-from-the-content', () => {
    const done = new ChunkAssembler().add(chunksOf(state, 1, 1_000_000, 'sha256:00')[0] as Chunk);
    assert.ok(done);
    assert.throws(() => decodeDesiredState(done, 'east'), /does not match the announced/);
  });

  it('rejects-inconsistent-chunks-and-garbage', () => {
    const a = new ChunkAssembler();
    const [c0, c1] = chunksOf(state, 1, 40);
    a.add(c0 as Chunk);
    assert.throws(() => a.add({ ...(c1 as Chunk), total: 99 }), DesiredStateRejectedError);
    const garbage = new ChunkAssembler().add({
      generation: 1,
      digest: state.digest,
      revision: 'r',
      index: 0,
      total: 1,
      data: Buffer.from('nope'),
      compressedSize: 4,
    });
    assert.ok(garbage);
    assert.throws(() => decodeDesiredState(garbage, 'east'), /cannot decode/);
  });
});
