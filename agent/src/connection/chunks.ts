// Reassembly and verification of desired states sent as chunks. A state is applied only
// if every bundle digest and the overall digest recompute to what the hub announced and
// the cluster is ours: a corrupted or misrouted state must never reach the cluster.
import { gunzipSync } from 'node:zlib';
import { bundleDigest, desiredStateDigest, errorMessage } from '@flotilla/common';
import type { DesiredState } from '@flotilla/common';
import { DesiredStateRejectedError } from './errors.js';

/** One chunk as received (the fields of DesiredStateChunk). */
export interface Chunk {
  generation: number;
  digest: string;
  revision: string;
  index: number;
  total: number;
  data: Uint8Array;
  compressedSize: number;
}

/** A reassembled, still compressed, desired state. */
export interface AssembledState {
  generation: number;
  digest: string;
  revision: string;
  payload: Buffer;
}

/** Largest uncompressed desired state accepted (256 MiB): a bound against gzip bombs. */
export const MAX_DESIRED_STATE_BYTES = 256 * 1024 * 1024;
/** Largest compressed desired state accepted (64 MiB). */
export const MAX_COMPRESSED_BYTES = 64 * 1024 * 1024;

/** Collects the chunks of the newest generation; an incomplete older one is discarded. */
export class ChunkAssembler {
  private current:
    { head: Chunk; parts: (Uint8Array | undefined)[]; received: number; bytes: number } | undefined;

  /** Adds a chunk; returns the whole state when it was the last missing one. Throws DesiredStateRejectedError on inconsistent chunks. */
  add(c: Chunk): AssembledState | undefined {
    if (this.current && c.generation < this.current.head.generation) return undefined;
    if (!this.current || c.generation > this.current.head.generation) {
      if (!(c.total >= 1) || c.compressedSize > MAX_COMPRESSED_BYTES) {
        throw new DesiredStateRejectedError(
          `generation ${c.generation}: bad total ${c.total} or size ${c.compressedSize}`,
        );
      }
      this.current = {
        head: c,
        parts: new Array<Uint8Array | undefined>(c.total),
        received: 0,
        bytes: 0,
      };
    }
    const cur = this.current;
    const h = cur.head;
    if (
      c.total !== h.total ||
      c.digest !== h.digest ||
      c.revision !== h.revision ||
      c.compressedSize !== h.compressedSize ||
      c.index < 0 ||
      c.index >= h.total
    ) {
      this.current = undefined;
      throw new DesiredStateRejectedError(
        `generation ${c.generation}: chunk ${c.index}/${c.total} does not match chunk 0 of its generation`,
      );
    }
    if (cur.parts[c.index]) return undefined; // a duplicate is harmless
    cur.parts[c.index] = c.data;
    cur.received++;
    cur.bytes += c.data.length;
    if (cur.received < h.total) return undefined;
    this.current = undefined;
    const payload = Buffer.concat(cur.parts as Uint8Array[]);
    if (payload.length !== h.compressedSize) {
      throw new DesiredStateRejectedError(
        `generation ${h.generation}: ${payload.length} bytes received, ${h.compressedSize} announced`,
      );
    }
    return { generation: h.generation, digest: h.digest, revision: h.revision, payload };
  }

  /** Drops a partial state (on reconnect: generations restart with the session). */
  reset(): void {
    this.current = undefined;
  }
}

function parse(payload: Buffer): DesiredState {
  let value: unknown;
  try {
    value = JSON.parse(
      gunzipSync(payload, { maxOutputLength: MAX_DESIRED_STATE_BYTES }).toString('utf8'),
    );
  } catch (err) {
    throw new DesiredStateRejectedError(`cannot decode: ${errorMessage(err)}`, { cause: err });
  }
  const s = value as Partial<DesiredState> | null;
  if (
    !s ||
    typeof s.cluster !== 'string' ||
    typeof s.digest !== 'string' ||
    !Array.isArray(s.bundles)
  ) {
    throw new DesiredStateRejectedError('not a DesiredState (cluster, digest, bundles)');
  }
  for (const b of s.bundles) {
    if (!b || typeof b.name !== 'string' || !Array.isArray(b.objects))
      throw new DesiredStateRejectedError('a bundle has no name or objects');
  }
  return s as DesiredState;
}

/** Decompresses, parses and verifies a reassembled state for `cluster`. */
export function decodeDesiredState(assembled: AssembledState, cluster: string): DesiredState {
  const state = parse(assembled.payload);
  if (state.cluster !== cluster)
    throw new DesiredStateRejectedError(
      `it is for cluster "${state.cluster}", this agent is "${cluster}"`,
    );
  for (const b of state.bundles) {
    const { digest, ...rest } = b;
    if (bundleDigest(rest) !== digest)
      throw new DesiredStateRejectedError(`bundle ${b.name}: digest does not match its content`);
  }
  const digest = desiredStateDigest(state.cluster, state.bundles, state.held, state.prune);
  if (digest !== assembled.digest || state.digest !== assembled.digest) {
    throw new DesiredStateRejectedError(
      `digest ${digest} does not match the announced ${assembled.digest}`,
    );
  }
  return state;
}
