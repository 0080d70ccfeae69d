// The pre-delete hooks of each applied bundle, kept in the cluster: when a bundle leaves
// the desired state, the state no longer says what its pre-delete hooks were. Secret
// flotilla-hooks-<bundle> in the agent namespace (type flotilla.dev/hooks, label
// flotilla.dev/hooks=<bundle>), data["pre-delete.json.gz"] = gzip(JSON of HookSpec[]).
// A Secret, because hooks may be Secrets.
import { gunzipSync, gzipSync } from 'node:zlib';
import { digestJson } from '@flotilla/common';
import type { HookSpec, KubeObject } from '@flotilla/common';
import type { KubeApi } from '../kube/types.js';

/** Name prefix of the Secrets holding pre-delete hooks. */
export const DELETE_HOOKS_PREFIX = 'flotilla-hooks-';
const LABEL = 'flotilla.dev/hooks';
const KEY = 'pre-delete.json.gz';

/** Digest of a list of pre-delete hooks (what the inventory records). */
export function deleteHooksDigest(hooks: readonly HookSpec[]): string {
  return digestJson(hooks);
}

/** Reads and writes the pre-delete hooks of bundles in the agent namespace. */
export class DeleteHookStore {
  constructor(
    private readonly kube: Pick<KubeApi, 'apply' | 'get' | 'delete'>,
    readonly namespace: string,
  ) {}

  private ref(bundle: string) {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      namespace: this.namespace,
      name: `${DELETE_HOOKS_PREFIX}${bundle}`,
    };
  }

  /** Stores a bundle's pre-delete hooks (replacing what was there). */
  async write(bundle: string, hooks: readonly HookSpec[], signal?: AbortSignal): Promise<void> {
    const secret: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'flotilla.dev/hooks',
      metadata: {
        name: `${DELETE_HOOKS_PREFIX}${bundle}`,
        namespace: this.namespace,
        labels: { [LABEL]: bundle, 'app.kubernetes.io/managed-by': 'flotilla' },
      },
      data: { [KEY]: gzipSync(JSON.stringify(hooks)).toString('base64') },
    };
    await this.kube.apply(secret, { force: true, signal });
  }

  /** A bundle's stored pre-delete hooks ([] when none or unreadable). */
  async read(bundle: string, signal?: AbortSignal): Promise<HookSpec[]> {
    const s = await this.kube.get(this.ref(bundle), signal);
    const data = (s?.data ?? {}) as Record<string, string>;
    if (!data[KEY]) return [];
    try {
      const parsed: unknown = JSON.parse(gunzipSync(Buffer.from(data[KEY], 'base64')).toString());
      return Array.isArray(parsed) ? (parsed as HookSpec[]) : [];
    } catch {
      return [];
    }
  }

  /** Removes a bundle's stored pre-delete hooks (nothing when there are none). */
  async remove(bundle: string, signal?: AbortSignal): Promise<void> {
    await this.kube.delete(this.ref(bundle), signal);
  }
}
