// The messages between the hub and its render worker process. Everything crosses as
// plain data (the IPC channel's "advanced" serialization, the structured clone
// algorithm): the tree as one buffer, the render's
// other inputs and its result as they are, so whatever render() takes and RenderResult
// holds reaches the other side without this file knowing its fields. One exception,
// for cost: a bundle's content (its objects) crosses once. The hub keeps the bundles of
// the last result by digest, and a result names the bundles the hub already has by
// digest; new contents arrive first, in batches of bounded size, each sent only once
// the hub has taken in the one before (a channel delivers everything queued in one turn of
// the event loop), so the hub's thread never spends long on a result, however large.
import type { BundleDesiredState, DesiredState } from '@flotilla/common';
import { MapRepoTree } from '../source/tree.js';
import type { RejectedEntry, RepoTree } from '../source/tree.js';
import type { FleetRenderer } from './renderer.js';
import type { RenderOptions, RenderResult } from './types.js';

/** What render() takes after the tree (the revision, and any later plain-data inputs). */
export type RenderInputs =
  Parameters<FleetRenderer['render']> extends [RepoTree, ...infer R] ? R : never;

/** A tree as one buffer: file i is data[ends[i-1] .. ends[i]). */
export interface PackedTree {
  paths: string[];
  ends: number[];
  data: ArrayBuffer;
  rejected: RejectedEntry[];
}

/** The worker's settings: the first message it gets. */
export interface WorkerSettings {
  options: RenderOptions;
  /** The worker's heap limit (its --max-old-space-size), bytes: what the heap guard measures against. */
  heapBytes: number;
}

/** Hub → worker, first and only once: the renderer's settings. */
export interface SettingsMessage {
  settings: WorkerSettings;
}

/** Hub → worker: render this tree with these inputs. */
export interface RenderRequest {
  id: number;
  tree: PackedTree;
  inputs: RenderInputs;
}

/** Hub → worker: the last batch of bundle contents was taken in; send the next. */
export interface BatchAck {
  ack: number;
}

/** Everything the hub sends its worker. */
export type WorkerRequest = SettingsMessage | RenderRequest | BatchAck;

/** A desired state whose bundles are indexes into WireResult.digests. */
export type WireState = Omit<DesiredState, 'bundles'> & { bundles: number[] };

/** A RenderResult as it crosses: desired states refer to bundle contents by digest. */
export type WireResult = Omit<RenderResult, 'clusters'> & {
  clusters: Map<string, WireState>;
  digests: string[];
};

/**
 * Worker → hub, for request `id`: batches of bundle contents the hub does not hold yet
 * (zero or more, first), then the result, or why there is none.
 */
export type RenderReply =
  | { id: number; bundles: BundleDesiredState[] }
  | { id: number; result: WireResult }
  | { id: number; error: { name: string; message: string } };

/** Objects per batch of bundle contents: bounds the hub thread's time to take in one message. */
export const BATCH_OBJECTS = 1_000;

/** Worker side: remembers which bundle contents the hub holds (those of the last result). */
export class ResultEncoder {
  private sent = new Set<string>();

  /** The batches of new contents and the result that refers to them; call in reply order. */
  encode(result: RenderResult): { batches: BundleDesiredState[][]; wire: WireResult } {
    const index = new Map<string, number>();
    const fresh: BundleDesiredState[] = [];
    const clusters = new Map<string, WireState>();
    for (const [name, state] of result.clusters) {
      const bundles = state.bundles.map((b) => {
        let i = index.get(b.digest);
        if (i === undefined) {
          i = index.size;
          index.set(b.digest, i);
          if (!this.sent.has(b.digest)) fresh.push(b);
        }
        return i;
      });
      clusters.set(name, { ...state, bundles });
    }
    this.sent = new Set(index.keys());
    const batches: BundleDesiredState[][] = [];
    let batch: BundleDesiredState[] = [];
    let objects = 0;
    for (const b of fresh) {
      if (batch.length > 0 && objects + b.objects.length > BATCH_OBJECTS) {
        batches.push(batch);
        batch = [];
        objects = 0;
      }
      batch.push(b);
      objects += b.objects.length;
    }
    if (batch.length > 0) batches.push(batch);
    return { batches, wire: { ...result, clusters, digests: [...index.keys()] } };
  }
}

/** Hub side: holds the bundle contents of the last result, and those arriving for the next. */
export class ResultDecoder {
  private known = new Map<string, BundleDesiredState>();
  private incoming = new Map<string, BundleDesiredState>();

  /** Takes in a batch of new bundle contents. */
  batch(bundles: readonly BundleDesiredState[]): void {
    for (const b of bundles) this.incoming.set(b.digest, b);
  }

  /** The full result; throws when it names a bundle that never arrived (a protocol bug). */
  finish(wire: WireResult): RenderResult {
    const byIndex = wire.digests.map((d) => {
      const b = this.incoming.get(d) ?? this.known.get(d);
      if (!b) throw new Error(`render worker: bundle ${d} never arrived`);
      return b;
    });
    const clusters = new Map<string, DesiredState>();
    for (const [name, state] of wire.clusters) {
      const bundles = state.bundles.map((i) => byIndex[i] as BundleDesiredState);
      clusters.set(name, { ...state, bundles });
    }
    this.known = new Map(byIndex.map((b) => [b.digest, b]));
    this.incoming = new Map();
    const { digests: _digests, clusters: _wire, ...rest } = wire;
    return { ...rest, clusters };
  }

  /** Forgets what arrived for a render that failed or whose worker is gone. */
  reset(): void {
    this.incoming = new Map();
  }
}

/** Copies a tree's files into one buffer, to cross as one piece rather than file by file. */
export function packTree(tree: RepoTree): PackedTree {
  const paths = [...tree.paths()];
  const files = paths.map((p) => tree.read(p) ?? Buffer.alloc(0));
  const data = new Uint8Array(files.reduce((n, f) => n + f.byteLength, 0));
  const ends: number[] = [];
  let at = 0;
  for (const f of files) {
    data.set(f, at);
    at += f.byteLength;
    ends.push(at);
  }
  return { paths, ends, data: data.buffer, rejected: [...tree.rejected] };
}

/** The tree a PackedTree holds; files are views of its buffer, not copies. */
export function unpackTree(packed: PackedTree): MapRepoTree {
  const files = new Map<string, Buffer>();
  let start = 0;
  packed.paths.forEach((path, i) => {
    const end = packed.ends[i] as number;
    files.set(path, Buffer.from(packed.data, start, end - start));
    start = end;
  });
  return new MapRepoTree(files, packed.rejected);
}
