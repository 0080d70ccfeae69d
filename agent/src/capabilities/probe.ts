// Reads what the cluster serves, the way `helm install` does (helm's action.GetVersionSet):
// the Kubernetes version from /version, every served group-version, and one
// "group-version/Kind" entry per resource and subresource kind. Aggregated discovery
// (Kubernetes 1.26+: /api and /apis as apidiscovery.k8s.io/v2, two requests) is asked
// for first; an API server without it answers plain discovery, read per group-version.
import {
  CAPABILITIES_LIMITS,
  apiVersionsSize,
  isApiVersionEntry,
  isKubeVersion,
} from '@flotilla/common';
import type { ClusterCapabilities } from '@flotilla/common';
import type { KubeHttpRequest } from '../kube/http.js';

/** Sends one GET to the API server (KubeClient.request). */
export type DiscoveryGet = (req: KubeHttpRequest) => Promise<unknown>;

/** What the API server serves, before bounding. */
export interface ServedApis {
  kubeVersion: string;
  groupVersions: Set<string>;
  /** "group-version/Kind" entries. */
  kinds: Set<string>;
}

const AGGREGATED =
  'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,' +
  'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json';

/** Group-versions read at once in plain discovery (8). */
const PLAIN_DISCOVERY_CONCURRENCY = 8;

interface VersionInfo {
  gitVersion?: string;
  major?: string;
  minor?: string;
  emulationMajor?: string;
  emulationMinor?: string;
}

/**
 * The version helm should be told. gitVersion when it is a version; a kube-apiserver
 * built without release flags says "v0.0.0-master+$Format:%H$", so then
 * v<major>.<minor>.0 (minor may read "27+" on some providers), else the emulation
 * version, else "" (unknown: the hub uses its fallback).
 */
export function kubeVersionOf(v: VersionInfo): string {
  if (v.gitVersion && isKubeVersion(v.gitVersion)) return v.gitVersion;
  for (const [major, minor] of [
    [v.major, v.minor],
    [v.emulationMajor, v.emulationMinor],
  ]) {
    const ma = /^\d+/.exec(major ?? '')?.[0];
    const mi = /^\d+/.exec(minor ?? '')?.[0];
    if (ma && mi) return `v${ma}.${mi}.0`;
  }
  return '';
}

interface DiscoveryList {
  kind?: string;
  items?: {
    metadata?: { name?: string };
    versions?: {
      version: string;
      resources?: {
        responseKind?: { kind?: string };
        subresources?: { responseKind?: { kind?: string } }[];
      }[];
    }[];
  }[];
}

// Adds one aggregated discovery document; false when the server answered something else.
function addAggregated(list: DiscoveryList, out: ServedApis): boolean {
  if (list.kind !== 'APIGroupDiscoveryList') return false;
  for (const group of list.items ?? []) {
    const name = group.metadata?.name ?? '';
    for (const v of group.versions ?? []) {
      const gv = name === '' ? v.version : `${name}/${v.version}`;
      out.groupVersions.add(gv);
      for (const r of v.resources ?? []) {
        if (r.responseKind?.kind) out.kinds.add(`${gv}/${r.responseKind.kind}`);
        for (const sub of r.subresources ?? [])
          if (sub.responseKind?.kind) out.kinds.add(`${gv}/${sub.responseKind.kind}`);
      }
    }
  }
  return true;
}

// Plain discovery: /api and /apis list group-versions, each group-version its resources.
// A group-version that fails to answer (an unavailable aggregated API) keeps its entry
// without kinds, as helm does.
async function addPlain(get: DiscoveryGet, out: ServedApis, signal?: AbortSignal): Promise<void> {
  const core = (await get({ method: 'GET', path: '/api', signal })) as { versions?: string[] };
  const groups = (await get({ method: 'GET', path: '/apis', signal })) as {
    groups?: { versions?: { groupVersion: string }[] }[];
  };
  const gvs = [
    ...(core.versions ?? []),
    ...(groups.groups ?? []).flatMap((g) => (g.versions ?? []).map((v) => v.groupVersion)),
  ];
  for (const gv of gvs) out.groupVersions.add(gv);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < gvs.length) {
      const gv = gvs[next++] as string;
      const path = gv.includes('/') ? `/apis/${gv}` : `/api/${gv}`;
      try {
        const list = (await get({ method: 'GET', path, signal })) as {
          resources?: { kind: string }[];
        };
        for (const r of list.resources ?? []) out.kinds.add(`${gv}/${r.kind}`);
      } catch {
        // Served but unavailable: the group-version stays, its kinds are unknown.
      }
    }
  };
  await Promise.all(Array.from({ length: PLAIN_DISCOVERY_CONCURRENCY }, worker));
}

/** Reads the version and served APIs; throws when the API server cannot be read. */
export async function readServedApis(get: DiscoveryGet, signal?: AbortSignal): Promise<ServedApis> {
  const out: ServedApis = { kubeVersion: '', groupVersions: new Set(), kinds: new Set() };
  out.kubeVersion = kubeVersionOf(
    (await get({ method: 'GET', path: '/version', signal })) as VersionInfo,
  );
  const [core, groups] = (await Promise.all([
    get({ method: 'GET', path: '/api', accept: AGGREGATED, signal }),
    get({ method: 'GET', path: '/apis', accept: AGGREGATED, signal }),
  ])) as DiscoveryList[];
  if (!addAggregated(core ?? {}, out) || !addAggregated(groups ?? {}, out)) {
    out.groupVersions.clear();
    out.kinds.clear();
    await addPlain(get, out, signal);
  }
  return out;
}

/** What bounding the served APIs dropped. */
export type Dropped = 'nothing' | 'custom kinds' | 'kinds' | 'everything';

// Built-in API groups: the core group, groups without a dot, and *.k8s.io.
function builtIn(entry: string): boolean {
  const parts = entry.split('/');
  if (parts.length < 3) return true;
  const group = parts[0] as string;
  return !group.includes('.') || group.endsWith('.k8s.io');
}

/**
 * Capabilities within CAPABILITIES_LIMITS (the hub refuses more): malformed entries are
 * left out. When there are too many, the Kind entries of custom groups go first (charts
 * ask for built-in kinds, "policy/v1/PodDisruptionBudget", and for custom
 * group-versions, "monitoring.coreos.com/v1"), then all Kind entries, then everything.
 */
export function boundCapabilities(served: ServedApis): {
  capabilities: ClusterCapabilities;
  dropped: Dropped;
  malformed: number;
} {
  const gvs = [...served.groupVersions].filter(isApiVersionEntry);
  const kinds = [...served.kinds].filter(isApiVersionEntry);
  const malformed = served.groupVersions.size + served.kinds.size - gvs.length - kinds.length;
  const fits = (list: string[]): boolean =>
    list.length <= CAPABILITIES_LIMITS.maxApiVersions &&
    apiVersionsSize(list) <= CAPABILITIES_LIMITS.maxEncodedBytes;
  const choices: [string[], Dropped][] = [
    [[...gvs, ...kinds], 'nothing'],
    [[...gvs, ...kinds.filter(builtIn)], 'custom kinds'],
    [gvs, 'kinds'],
  ];
  const [apiVersions, dropped] = choices.find(([list]) => fits(list)) ?? [[], 'everything'];
  return {
    capabilities: { kubeVersion: served.kubeVersion, apiVersions: [...apiVersions].sort() },
    dropped,
    malformed,
  };
}
