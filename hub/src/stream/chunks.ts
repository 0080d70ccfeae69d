// The wire form of a desired state: gzip(JSON) cut into slices of at most 1 MiB, so
// any size passes gRPC's default 4 MiB message limit. Encoding is done once per
// (digest, revision) and shared by every session that sends it; a bundle that several
// clusters' states hold is compressed once, as a gzip member of its own (BundleMembers).
import { gunzip, gzip, gzipSync } from 'node:zlib';
import { promisify } from 'node:util';
import type { BundleDesiredState, DesiredState } from '@flotilla/common';
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

/**
 * Compresses and slices a desired state on the calling thread (see EncodingCache). With
 * `members`, bundles seen in more than one state are not compressed again (BundleMembers).
 */
export function encodeDesiredStateSync(
  state: DesiredState,
  maxChunk = MAX_CHUNK_BYTES,
  members?: BundleMembers,
): EncodedDesiredState {
  const payload = members
    ? members.encode(state)
    : exactSize(gzipSync(Buffer.from(JSON.stringify(state))));
  return sliced(state, payload, maxChunk);
}

// Constant pieces between shared members: compressed once for the process.
const COMMA = gzipSync(',');
const CLOSE = gzipSync(']}');

/**
 * Gzip members of the bundles that several clusters' desired states share.
 *
 * A gzip stream may be several members one after the other, and gunzip (the agent's
 * zlib, every version) decompresses them as one text. A render holds one object per
 * distinct bundle (render/worker-protocol.ts: many clusters get the same rendering), so
 * a member is kept per bundle object: a fan-out where every cluster gets the same four
 * bundles and one of its own compresses each shared bundle once, and per cluster only
 * its header and own bundle. Measured on the benchmark's fleet (1,000 clusters, 5
 * bundles, one per cluster): 82 ms of JSON and 144-372 ms of gzip per fan-out became
 * 36-46 ms; the payload grows from 1.5 to 2.9 KB, each member compressed on its own.
 *
 * A bundle seen once is compressed inline with its neighbours and not kept (a bundle of
 * one cluster would only cost memory); from its second state on it has its own member,
 * held as long as the bundle object lives (the render keeps the last result's bundles).
 * Bundle objects are never changed once rendered: the member is keyed by identity.
 */
export class BundleMembers {
  private readonly seen = new WeakSet<BundleDesiredState>();
  private readonly members = new WeakMap<BundleDesiredState, Buffer>();
  private compressedCount = 0;
  private reusedCount = 0;

  /** Bundle members compressed so far, for tests and metrics. */
  get compressed(): number {
    return this.compressedCount;
  }

  /** Times a kept member was used instead of compressing its bundle again. */
  get reused(): number {
    return this.reusedCount;
  }

  /** The gzip payload of state: runs of its own text, and members of shared bundles. */
  encode(state: DesiredState): Buffer {
    const parts: Buffer[] = [];
    const { bundles, ...rest } = state;
    let run = `${JSON.stringify(rest).slice(0, -1)},"bundles":[`;
    const flush = (): void => {
      if (run === ',') parts.push(COMMA);
      else if (run === ']}') parts.push(CLOSE);
      else if (run !== '') parts.push(gzipSync(run));
      run = '';
    };
    bundles.forEach((b, i) => {
      if (i > 0) run += ',';
      let member = this.members.get(b);
      if (member) this.reusedCount++;
      else if (this.seen.has(b)) {
        member = exactSize(gzipSync(JSON.stringify(b)));
        this.members.set(b, member);
        this.compressedCount++;
      } else {
        this.seen.add(b);
        run += JSON.stringify(b);
        return;
      }
      flush();
      parts.push(member);
    });
    run += ']}';
    flush();
    // Buffer.concat may slice the shared 8 KiB pool; the payload is kept until sent.
    const out = Buffer.allocUnsafeSlow(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) at += p.copy(out, at);
    return out;
  }
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

/**
 * Longest stretch of sending (encoding and writing) in one turn of the event loop by
 * default (25 ms; hub.yaml grpc.sendBudget). With 10 ms a fan-out of 1,000 took 3-6 s from
 * its first send to its last on a loaded machine, each turn followed by a pass over acks,
 * events and queries; 50-100 ms took 1.3-4.4 s (docs/benchmarks.md). A query arriving
 * during a turn waits for it: 25 ms is the middle.
 */
export const DEFAULT_ENCODE_BUDGET_MS = 25;

/** Options of EncodingCache. */
export interface EncodingCacheOptions {
  /** Longest stretch of queued sends per turn of the event loop (default DEFAULT_ENCODE_BUDGET_MS); at least one runs per turn. */
  budgetMs?: number;
  /** The encoder (default encodeDesiredStateSync with the cache's BundleMembers); tests pass a slower or counting one. */
  encode?: (state: DesiredState) => EncodedDesiredState;
}

interface Task {
  run: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

/**
 * Caches the encoding of each cluster's current desired state, and runs the sessions'
 * sends in turns. Only the latest (digest, revision) per cluster is kept: older ones are
 * never sent again.
 *
 * A send (encode, then write the chunks) waits in a FIFO and runs on the event loop's
 * thread, in stretches of at most budgetMs per turn; heartbeats, acks and queries run
 * between turns. The budget covers the writes: when a turn only encoded and the sessions
 * wrote afterwards (each resuming from its awaited encoding, all in the same turn's
 * microtasks), a turn lasted its budget plus every write it released. History: starting
 * every async gzip together held 1,000 deflate states (~256 KiB each) until libuv's pool
 * drained them (peak RSS 1.75x steady at 1,000 clusters); a queue of 16 async gzips
 * bounded that, but each state then needed a hop between the pool and the loop, and on a
 * loaded machine every hop waited for a core: the last state went out 9-30 s after the
 * first. Done here, one deflate state lives at a time.
 */
export class EncodingCache {
  private readonly byCluster = new Map<string, { key: string; encoded: EncodedDesiredState }>();
  private readonly waiting: Task[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private encodes = 0;
  private turns = 0;
  private readonly budgetMs: number;
  private readonly encoder: (state: DesiredState) => EncodedDesiredState;
  /** Members of bundles shared between clusters' states. */
  readonly members = new BundleMembers();

  constructor(opts: EncodingCacheOptions = {}) {
    this.budgetMs = Math.max(0, opts.budgetMs ?? DEFAULT_ENCODE_BUDGET_MS);
    this.encoder =
      opts.encode ?? ((state) => encodeDesiredStateSync(state, MAX_CHUNK_BYTES, this.members));
  }

  /** The encoding of state now, computed at most once per (cluster, digest, revision); throws what the encoder throws. */
  encodeNow(state: DesiredState): EncodedDesiredState {
    const key = `${state.digest}@${state.revision}`;
    const hit = this.byCluster.get(state.cluster);
    if (hit && hit.key === key) return hit.encoded;
    this.encodes++;
    // A failed encoding is not cached: the next session retries it.
    const encoded = this.encoder(state);
    this.byCluster.set(state.cluster, { key, encoded });
    return encoded;
  }

  /** The encoding of state, in its turn (see turn). */
  get(state: DesiredState): Promise<EncodedDesiredState> {
    return this.turn(() => this.encodeNow(state));
  }

  /**
   * Runs work (a session's send: encodeNow and its writes) in a later turn of the event
   * loop, in FIFO order with the other sends; resolves with its result.
   */
  turn<T>(work: () => T): Promise<T> {
    const done = new Promise<T>((resolve, reject) => {
      this.waiting.push({ run: work, resolve: resolve as (v: unknown) => void, reject });
    });
    this.schedule();
    return done;
  }

  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0) return;
    this.scheduled = setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = undefined;
    this.turns++;
    const start = performance.now();
    do {
      const task = this.waiting.shift();
      if (!task) break;
      try {
        task.resolve(task.run());
      } catch (err) {
        task.reject(err);
      }
    } while (performance.now() - start < this.budgetMs);
    this.schedule();
  }

  /**
   * The state's encoding was written to its agent: dropped, unless a newer one replaced it.
   * Kept, 1,000 clusters' encodings would stay in memory between commits for the rare
   * agent that reconnects without having applied its state; that one is encoded again.
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

  /** Turns of the event loop that ran queued sends, for tests. */
  get turnCount(): number {
    return this.turns;
  }

  /** Sends waiting for their turn. */
  get pending(): number {
    return this.waiting.length;
  }
}
