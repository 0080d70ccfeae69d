// Durable rollout state in NATS JetStream KV: one key per bundle in flotilla-rollouts
// (its BundleState, saved form), and bundle renderings by digest in flotilla-renderings
// (gzipped JSON; a large rendering is split over several keys, as one KV value is at most
// NATS's max payload). Renderings are content-addressed: writing one twice is harmless,
// and a rendering is written before any state that refers to it.
import { gunzipSync, gzipSync } from 'node:zlib';
import type { KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { BundleDesiredState } from '@flotilla/common';
import { ValidationError } from '@flotilla/common';
import { loadForm, saveForm } from './bundle-state.js';
import type { BundleState, SavedBundleState } from './bundle-state.js';
import { openKv } from '../status/jetstream-replicas.js';

/** KV bucket holding one rollout state per bundle (key "bundle.<name>"). */
export const ROLLOUTS_BUCKET = 'flotilla-rollouts';
/** KV bucket holding bundle renderings by digest (key: the digest's hex). */
export const RENDERINGS_BUCKET = 'flotilla-renderings';
/** Largest piece of one rendering per KV value (512 KiB, under NATS's default 1 MiB payload). */
export const RENDERING_CHUNK_BYTES = 512 * 1024;

/** Where the controller keeps its state; KvRolloutStore in production, a map in tests. */
export interface RolloutStore {
  /** Every saved bundle state. */
  loadStates(): Promise<BundleState[]>;
  /** Saves a bundle's state as encodeState encoded it. */
  saveState(bundle: string, encoded: string): Promise<void>;
  deleteState(bundle: string): Promise<void>;
  /** Renderings by digest; a missing one is absent from the result. */
  loadRenderings(digests: readonly string[]): Promise<Map<string, BundleDesiredState>>;
  saveRendering(r: BundleDesiredState): Promise<void>;
  /** Digests of every saved rendering. */
  renderingDigests(): Promise<string[]>;
  deleteRendering(digest: string): Promise<void>;
}

/** A bundle state as saved (its saved form, JSON): taken at once, whatever changes it later. */
export function encodeState(s: BundleState): string {
  return JSON.stringify(saveForm(s));
}

const stateKey = (bundle: string): string => `bundle.${bundle}`;
const renderingKey = (digest: string): string => {
  const hex = digest.replace(/^sha256:/, '');
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new ValidationError(`not a bundle digest: ${digest}`);
  return hex;
};

/** The store over JetStream KV. */
export class KvRolloutStore implements RolloutStore {
  private states: KV | undefined;
  private renderings: KV | undefined;

  /** replicas: of both buckets when created (default 1; hub.yaml nats.replicas). */
  constructor(
    private readonly connection: () => Promise<NatsConnection>,
    private readonly replicas = 1,
  ) {}

  private async buckets(): Promise<{ states: KV; renderings: KV }> {
    if (!this.states || !this.renderings) {
      const nc = await this.connection();
      this.states = await openKv(nc, ROLLOUTS_BUCKET, { history: 1 }, this.replicas);
      this.renderings = await openKv(nc, RENDERINGS_BUCKET, { history: 1 }, this.replicas);
    }
    return { states: this.states, renderings: this.renderings };
  }

  async loadStates(): Promise<BundleState[]> {
    const { states } = await this.buckets();
    const out: BundleState[] = [];
    for await (const key of await states.keys('bundle.>')) {
      const e = await states.get(key);
      if (e?.operation === 'PUT') out.push(loadForm(e.json<SavedBundleState>()));
    }
    return out;
  }

  async saveState(bundle: string, encoded: string): Promise<void> {
    const { states } = await this.buckets();
    await states.put(stateKey(bundle), encoded);
  }

  async deleteState(bundle: string): Promise<void> {
    const { states } = await this.buckets();
    await states.delete(stateKey(bundle));
  }

  async loadRenderings(digests: readonly string[]): Promise<Map<string, BundleDesiredState>> {
    const { renderings } = await this.buckets();
    const out = new Map<string, BundleDesiredState>();
    for (const digest of digests) {
      const key = renderingKey(digest);
      const head = await renderings.get(key);
      if (head?.operation !== 'PUT') continue;
      let bytes = head.value;
      // A split rendering's first value is {"chunks": n}; its pieces follow as key.1 … key.n.
      if (bytes[0] === 0x7b) {
        const { chunks } = JSON.parse(new TextDecoder().decode(bytes)) as { chunks: number };
        const parts: Uint8Array[] = [];
        for (let i = 1; i <= chunks; i++) {
          const part = await renderings.get(`${key}.${i}`);
          if (part?.operation !== 'PUT')
            throw new ValidationError(`rendering ${digest}: piece ${i} is missing`);
          parts.push(part.value);
        }
        bytes = Buffer.concat(parts);
      }
      out.set(digest, JSON.parse(gunzipSync(bytes).toString('utf8')) as BundleDesiredState);
    }
    return out;
  }

  async saveRendering(r: BundleDesiredState): Promise<void> {
    const { renderings } = await this.buckets();
    const key = renderingKey(r.digest);
    const bytes = gzipSync(JSON.stringify(r));
    if (bytes.length <= RENDERING_CHUNK_BYTES) {
      await renderings.put(key, bytes);
      return;
    }
    const chunks = Math.ceil(bytes.length / RENDERING_CHUNK_BYTES);
    for (let i = 0; i < chunks; i++)
      await renderings.put(
        `${key}.${i + 1}`,
        bytes.subarray(i * RENDERING_CHUNK_BYTES, (i + 1) * RENDERING_CHUNK_BYTES),
      );
    // Written last: a reader never finds the head without its pieces.
    await renderings.put(key, JSON.stringify({ chunks }));
  }

  async renderingDigests(): Promise<string[]> {
    const { renderings } = await this.buckets();
    const out: string[] = [];
    for await (const key of await renderings.keys())
      if (!key.includes('.')) out.push(`sha256:${key}`);
    return out;
  }

  async deleteRendering(digest: string): Promise<void> {
    const { renderings } = await this.buckets();
    const key = renderingKey(digest);
    const head = await renderings.get(key);
    if (head?.operation === 'PUT' && head.value[0] === 0x7b) {
      const { chunks } = JSON.parse(new TextDecoder().decode(head.value)) as { chunks: number };
      for (let i = 1; i <= chunks; i++) await renderings.delete(`${key}.${i}`);
    }
    await renderings.delete(key);
  }
}

/** A store in memory (tests, the benchmark). */
export class MemoryRolloutStore implements RolloutStore {
  readonly states = new Map<string, string>();
  readonly renderings = new Map<string, BundleDesiredState>();
  /** Makes every write fail while set (tests of NATS being down). */
  failWrites = false;

  async loadStates(): Promise<BundleState[]> {
    return [...this.states.values()].map((t) => loadForm(JSON.parse(t) as SavedBundleState));
  }
  async saveState(bundle: string, encoded: string): Promise<void> {
    this.check();
    this.states.set(bundle, encoded);
  }
  async deleteState(bundle: string): Promise<void> {
    this.check();
    this.states.delete(bundle);
  }
  async loadRenderings(digests: readonly string[]): Promise<Map<string, BundleDesiredState>> {
    const out = new Map<string, BundleDesiredState>();
    for (const d of digests) {
      const r = this.renderings.get(d);
      if (r) out.set(d, r);
    }
    return out;
  }
  async saveRendering(r: BundleDesiredState): Promise<void> {
    this.check();
    this.renderings.set(r.digest, r);
  }
  async renderingDigests(): Promise<string[]> {
    return [...this.renderings.keys()];
  }
  async deleteRendering(digest: string): Promise<void> {
    this.check();
    this.renderings.delete(digest);
  }
  private check(): void {
    if (this.failWrites) throw new Error('store unavailable');
  }
}
