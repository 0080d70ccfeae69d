// The wire form of a desired state: gzip(JSON) cut into slices of at most 1 MiB, so
// any size passes gRPC's default 4 MiB message limit. Encoding is done once per
// (digest, revision) and shared by every session that sends it.
import { gunzip, gzip, gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import type { DesiredState } from '@flotilla/common';
import { ValidationError } from '@flotilla/common';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Largest slice of compressed payload in one DesiredStateChunk (1 MiB). */
export const MAX_CHUNK_BYTES = 1024 * 1024;

/** A desired state ready to send: its compressed payload already sliced. */
export interface EncodedDesiredState {
  digest: string;
  revision: string;
  /** Slices of the gzip payload, each ≤ MAX_CHUNK_BYTES. */
  slices: Buffer[];
  /** Length of the whole gzip payload. */
  compressedSize: number;
}

/** Compresses and slices a desired state. */
export async function encodeDesiredState(
  state: DesiredState,
  maxChunk = MAX_CHUNK_BYTES,
): Promise<EncodedDesiredState> {
  // gzip runs on the libuv pool, so a thousand clusters' states do not block the loop.
  const payload = exactSize(await gzipAsync(Buffer.from(JSON.stringify(state))));
  return sliced(state, payload, maxChunk);
}

/** One received chunk, as an agent sees it. */
export interface ChunkLike {
  digest: string;
  index: number;
  total: number;
  data: Uint8Array;
  compressedSize: number;
}

/** Reassembles chunks (in order) into a desired state; throws ValidationError when incomplete. */
export async function decodeDesiredState(chunks: readonly ChunkLike[]): Promise<DesiredState> {
  const first = chunks[0];
  if (!first) throw new ValidationError('no chunks');
  if (chunks.length !== first.total)
    throw new ValidationError(`expected ${first.total} chunks, got ${chunks.length}`);
  chunks.forEach((c, i) => {
    if (c.index !== i || c.digest !== first.digest)
      throw new ValidationError(`chunk ${i} is out of sequence`);
  });
  const payload = Buffer.concat(chunks.map((c) => c.data));
  if (payload.length !== first.compressedSize) {
    throw new ValidationError(
      `payload is ${payload.length} bytes, expected ${first.compressedSize}`,
    );
  }
  return JSON.parse((await gunzipAsync(payload)).toString('utf8')) as DesiredState;
}

/** Compresses and slices a desired state on the calling thread (see EncodingCache). */
export function encodeDesiredStateSync(
  state: DesiredState,
  maxChunk = MAX_CHUNK_BYTES,
): EncodedDesiredState {
  return sliced(state, exactSize(gzipSync(Buffer.from(JSON.stringify(state)))), maxChunk);
}

// gzipSync returns a view on its 16 KiB output chunk: a 3 KB state kept in the cache for
// as long as its cluster is in the fleet would hold 16 KiB. A copy holds what it needs.
function exactSize(payload: Buffer): Buffer {
  if (payload.byteLength === payload.buffer.byteLength) return payload;
  const exact = Buffer.allocUnsafeSlow(payload.byteLength);
  payload.copy(exact);
  return exact;
}

function sliced(state: DesiredState, payload: Buffer, maxChunk: number): EncodedDesiredState {
  const slices: Buffer[] = [];
  for (let off = 0; off < payload.length; off += maxChunk)
    slices.push(payload.subarray(off, off + maxChunk));
  if (slices.length === 0) slices.push(Buffer.alloc(0));
  return { digest: state.digest, revision: state.revision, slices, compressedSize: payload.length };
}

/** Longest stretch of encoding in one turn of the event loop by default (10 ms). */
export const DEFAULT_ENCODE_BUDGET_MS = 10;

/** Options of EncodingCache. */
export interface EncodingCacheOptions {
  /** Longest stretch of encoding per turn of the event loop (default DEFAULT_ENCODE_BUDGET_MS); at least one state is encoded per turn. */
  budgetMs?: number;
  /** The encoder (default encodeDesiredStateSync); tests pass a slower or counting one. */
  encode?: (state: DesiredState) => EncodedDesiredState;
}

interface EncodeJob {
  state: DesiredState;
  resolve: (e: EncodedDesiredState) => void;
  reject: (err: unknown) => void;
}

/**
 * Caches the encoding of each cluster's current desired state. Only the latest
 * (digest, revision) per cluster is kept: older ones are never sent again.
 *
 * Encodings wait in a FIFO and are done on the event loop's thread, in stretches of at
 * most budgetMs per turn. A render changes every cluster at once: starting every async
 * gzip together held 1,000 deflate states (~256 KiB each) until libuv's pool drained them
 * (peak RSS 1.75x steady at 1,000 clusters); a queue of 16 async gzips bounded that, but
 * each state then needed a hop between the pool and the loop, and on a loaded machine
 * every hop waited for a core: the last state went out 9-30 s after the first. Done
 * here, one deflate state lives at a time, a turn encodes as many states as fit in its
 * budget (a 9 KB state takes ~0.3 ms), and heartbeats, acks and queries run between turns.
 */
export class EncodingCache {
  private readonly byCluster = new Map<
    string,
    { key: string; encoded: Promise<EncodedDesiredState> }
  >();
  private readonly waiting: EncodeJob[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private encodes = 0;
  private readonly budgetMs: number;
  private readonly encode: (state: DesiredState) => EncodedDesiredState;

  constructor(opts: EncodingCacheOptions = {}) {
    this.budgetMs = Math.max(0, opts.budgetMs ?? DEFAULT_ENCODE_BUDGET_MS);
    this.encode = opts.encode ?? ((state) => encodeDesiredStateSync(state));
  }

  /** The encoding of state, computed at most once per (cluster, digest, revision). */
  get(state: DesiredState): Promise<EncodedDesiredState> {
    const key = `${state.digest}@${state.revision}`;
    const hit = this.byCluster.get(state.cluster);
    if (hit && hit.key === key) return hit.encoded;
    this.encodes++;
    const encoded = new Promise<EncodedDesiredState>((resolve, reject) => {
      this.waiting.push({ state, resolve, reject });
    });
    this.schedule();
    // A failed encoding must not stay cached: the next session retries it.
    encoded.catch(() => {
      if (this.byCluster.get(state.cluster)?.encoded === encoded)
        this.byCluster.delete(state.cluster);
    });
    this.byCluster.set(state.cluster, { key, encoded });
    return encoded;
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0) return;
    this.scheduled = setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = undefined;
    const start = performance.now();
    do {
      const job = this.waiting.shift();
      if (!job) break;
      try {
        job.resolve(this.encode(job.state));
      } catch (err) {
        job.reject(err);
      }
    } while (performance.now() - start < this.budgetMs);
    this.schedule();
  }

  /**
   * The state's encoding was written to its agent: dropped, unless a newer one replaced it.
   * Kept, 1,000 clusters' encodings would stay in memory between commits for the rare
   * agent that reconnects without having applied its state; that one is encoded again.
   * Sessions already waiting for it keep their reference.
   */
  release(state: DesiredState): void {
    const hit = this.byCluster.get(state.cluster);
    if (hit?.key === `${state.digest}@${state.revision}`) this.byCluster.delete(state.cluster);
  }

  /** Clusters whose encoding is held. */
  get size(): number {
    return this.byCluster.size;
  }

  /** Drops a cluster's encoding (the cluster left the fleet). */
  forget(cluster: string): void {
    this.byCluster.delete(cluster);
  }

  /** How many encodings were computed, for tests and metrics. */
  get encodeCount(): number {
    return this.encodes;
  }

  /** Encodings waiting for their turn. */
  get pending(): number {
    return this.waiting.length;
  }
}
