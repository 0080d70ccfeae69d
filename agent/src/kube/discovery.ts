// Discovery: which URL serves a kind, and whether it is namespaced. Cached per
// group/version and refreshed on a miss, so a CRD installed a moment ago resolves
// without restarting the agent.
import type { KubeHttp } from './http.js';
import { hasStatus, UnknownKindError } from './errors.js';
import type { ResourceInfo } from './types.js';

interface APIResourceList {
  resources?: { name: string; kind: string; namespaced: boolean; verbs?: string[] }[];
}

interface APIGroupList {
  groups?: { preferredVersion?: { groupVersion?: string } }[];
}

/** Splits "apps/v1" into group "apps", version "v1"; "v1" is the core group. */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** URL prefix of a group/version: /api/v1 or /apis/<group>/<version>. */
export function groupVersionPath(group: string, version: string): string {
  return group === '' ? `/api/${version}` : `/apis/${group}/${version}`;
}

/** Resolves kinds to resources, caching per group/version. */
export class Discovery {
  private readonly cache = new Map<string, Map<string, ResourceInfo>>();

  constructor(private readonly send: KubeHttp) {}

  /** The resource serving apiVersion/kind; throws UnknownKindError when none does. */
  async resource(apiVersion: string, kind: string, signal?: AbortSignal): Promise<ResourceInfo> {
    const hit = this.cache.get(apiVersion)?.get(kind);
    if (hit) return hit;
    const fresh = await this.load(apiVersion, signal);
    const info = fresh.get(kind);
    if (!info) throw new UnknownKindError(apiVersion, kind);
    return info;
  }

  /**
   * Every namespaced kind the server lists (the preferred version of each group), read
   * fresh: what may live in a namespace. Subresources and kinds without "list" are left out.
   */
  async namespacedKinds(signal?: AbortSignal): Promise<{ apiVersion: string; kind: string }[]> {
    const groups = (await this.send({ method: 'GET', path: '/apis', signal })) as APIGroupList;
    const versions = [
      'v1',
      ...(groups.groups ?? []).flatMap((g) => g.preferredVersion?.groupVersion ?? []),
    ];
    const out: { apiVersion: string; kind: string }[] = [];
    for (const apiVersion of versions) {
      const { group, version } = splitApiVersion(apiVersion);
      const list = (await this.send({
        method: 'GET',
        path: groupVersionPath(group, version),
        signal,
      })) as APIResourceList;
      for (const r of list.resources ?? [])
        if (r.namespaced && !r.name.includes('/') && (r.verbs ?? []).includes('list'))
          out.push({ apiVersion, kind: r.kind });
    }
    return out;
  }

  /** Drops everything cached (e.g. after CRDs were deleted). */
  invalidate(): void {
    this.cache.clear();
  }

  private async load(apiVersion: string, signal?: AbortSignal): Promise<Map<string, ResourceInfo>> {
    const { group, version } = splitApiVersion(apiVersion);
    const byKind = new Map<string, ResourceInfo>();
    try {
      const list = (await this.send({
        method: 'GET',
        path: groupVersionPath(group, version),
        signal,
      })) as APIResourceList;
      for (const r of list.resources ?? []) {
        // "deployments/status" and friends are subresources, not kinds to apply.
        if (r.name.includes('/')) continue;
        byKind.set(r.kind, {
          group,
          version,
          kind: r.kind,
          plural: r.name,
          namespaced: r.namespaced,
        });
      }
    } catch (err) {
      if (!hasStatus(err, 404)) throw err;
    }
    this.cache.set(apiVersion, byKind);
    return byKind;
  }
}
