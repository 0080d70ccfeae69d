// The last desired state, kept in the cluster so a restarted agent enforces it before
// the hub answers (offline autonomy). Format (an invariant, see agent/README.md):
// gzip(JSON of DesiredState) cut into parts of ≤ 900 KiB, stored in Secrets
// flotilla-state-<i> (type flotilla.dev/desired-state, data["state.gz.<i>"]) in the agent
// namespace. Part 0 is the head and is written last; its annotations give the digest,
// revision, part count and the last applied digest/revision. Secrets, because bundles
// may contain Secrets.
import { gunzipSync, gzipSync } from 'node:zlib';
import { bundleDigest, desiredStateDigest } from '@flotilla/common';
import type { DesiredState, KubeObject } from '@flotilla/common';
import type { KubeApi } from '../kube/types.js';

/** Name prefix of state Secrets. */
export const STATE_PREFIX = 'flotilla-state-';
/** Largest part, in compressed bytes (Secrets are limited to 1 MiB). */
export const STATE_PART_BYTES = 900 * 1024;
const LABEL = 'flotilla.dev/state';
const A = {
  digest: 'flotilla.dev/digest',
  revision: 'flotilla.dev/revision',
  parts: 'flotilla.dev/parts',
  appliedDigest: 'flotilla.dev/applied-digest',
  appliedRevision: 'flotilla.dev/applied-revision',
} as const;

/** What was last applied, as recorded. */
export interface AppliedMark {
  digest: string;
  revision: string;
}

/** A stored desired state and what of it was applied. */
export interface StoredState {
  state: DesiredState;
  applied: AppliedMark;
}

/** Cuts bytes into parts of at most `size` bytes (at least one part). */
export function splitBytes(data: Uint8Array, size: number): Buffer[] {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(Buffer.from(data.subarray(i, i + size)));
  return parts.length > 0 ? parts : [Buffer.alloc(0)];
}

/** True when the state's bundle digests and overall digest match its content. */
export function verifyDigests(state: DesiredState): boolean {
  for (const b of state.bundles) {
    const { digest, ...rest } = b;
    if (bundleDigest(rest) !== digest) return false;
  }
  return desiredStateDigest(state.cluster, state.bundles, state.held, state.prune) === state.digest;
}

/** Stores the last desired state in Secrets of one namespace. */
export class StateStore {
  constructor(
    private readonly kube: KubeApi,
    readonly namespace: string,
    private readonly partBytes = STATE_PART_BYTES,
  ) {}

  /** Writes the state (parts first, head last) and removes parts left from a larger state. */
  async save(state: DesiredState, applied: AppliedMark, signal?: AbortSignal): Promise<void> {
    const parts = splitBytes(gzipSync(JSON.stringify(state)), this.partBytes);
    const secret = (i: number, extra: Record<string, string>): KubeObject => ({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'flotilla.dev/desired-state',
      metadata: {
        name: `${STATE_PREFIX}${i}`,
        namespace: this.namespace,
        labels: { [LABEL]: 'part', 'app.kubernetes.io/managed-by': 'flotilla' },
        annotations: { [A.digest]: state.digest, ...extra },
      },
      data: { [`state.gz.${i}`]: (parts[i] as Buffer).toString('base64') },
    });
    for (let i = 1; i < parts.length; i++)
      await this.kube.apply(secret(i, {}), { force: true, signal });
    const head = {
      [A.revision]: state.revision,
      [A.parts]: String(parts.length),
      [A.appliedDigest]: applied.digest,
      [A.appliedRevision]: applied.revision,
    };
    await this.kube.apply(secret(0, head), { force: true, signal });
    const all = await this.kube.list('v1', 'Secret', {
      namespace: this.namespace,
      labelSelector: `${LABEL}=part`,
      signal,
    });
    for (const s of all) {
      const index = Number(s.metadata.name.slice(STATE_PREFIX.length));
      if (Number.isInteger(index) && index >= parts.length)
        await this.kube.delete(
          { apiVersion: 'v1', kind: 'Secret', namespace: this.namespace, name: s.metadata.name },
          signal,
        );
    }
  }

  /** The stored state, or undefined when there is none or it is incomplete or corrupt. */
  async load(signal?: AbortSignal): Promise<StoredState | undefined> {
    const get = (i: number): Promise<KubeObject | undefined> =>
      this.kube.get(
        {
          apiVersion: 'v1',
          kind: 'Secret',
          namespace: this.namespace,
          name: `${STATE_PREFIX}${i}`,
        },
        signal,
      );
    const head = await get(0);
    const ann = head?.metadata.annotations ?? {};
    const total = Number(ann[A.parts]);
    if (!head || !Number.isInteger(total) || total < 1) return undefined;
    const chunks: Buffer[] = [];
    for (let i = 0; i < total; i++) {
      const part = i === 0 ? head : await get(i);
      // A part from another save (crash between writes) makes the state unusable.
      if (!part || part.metadata.annotations?.[A.digest] !== ann[A.digest]) return undefined;
      const data = (part.data ?? {}) as Record<string, string>;
      chunks.push(Buffer.from(data[`state.gz.${i}`] ?? '', 'base64'));
    }
    try {
      const state = JSON.parse(gunzipSync(Buffer.concat(chunks)).toString('utf8')) as DesiredState;
      if (!verifyDigests(state)) return undefined;
      return {
        state,
        applied: { digest: ann[A.appliedDigest] ?? '', revision: ann[A.appliedRevision] ?? '' },
      };
    } catch {
      return undefined;
    }
  }
}
