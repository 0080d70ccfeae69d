// The Helm capabilities `flotilla render --cluster X` renders X with, in the hub's order:
// what X's agent reported (read from the hub with --hub), else the Cluster's
// spec.kubeVersion / spec.apiVersions, else the default (the hub's, with --hub). The
// --kube-version and --api-versions flags win over all of them, each for its own field.
import { checkCapabilities, isApiVersionEntry, isKubeVersion } from '@flotilla/common';
import type { ClusterCapabilities } from '@flotilla/common';
import { BUILTIN_CAPABILITIES, effectiveCapabilities } from '../render/index.js';
import { scanLayout } from '../render/layout.js';
import { parseCluster } from '../render/spec.js';
import type { DeclaredCapabilities } from '../render/capabilities.js';
import type { RepoTree } from '../source/tree.js';
import { getJson, hubBase } from './hub-client.js';
import type { Fetch } from './hub-client.js';
import { hubFetch } from './hub-tls.js';
import type { CliIo } from './io.js';

/** The capability flags of one invocation. */
export interface CapabilityFlags {
  kubeVersion: string | undefined;
  apiVersions: string[] | undefined;
  /** Read the cluster's reported capabilities from the hub. */
  hub: boolean;
  hubUrl: string | undefined;
  caFile: string | undefined;
  tokenFile: string | undefined;
}

/** Checks the flags; throws an Error naming the flag. */
export function parseCapabilityFlags(values: {
  'kube-version'?: string | undefined;
  'api-versions'?: string[] | undefined;
  hub?: boolean | undefined;
  'hub-url'?: string | undefined;
  'ca-file'?: string | undefined;
  'token-file'?: string | undefined;
}): CapabilityFlags {
  const kubeVersion = values['kube-version'];
  if (kubeVersion !== undefined && !isKubeVersion(kubeVersion))
    throw new Error(`--kube-version: "${kubeVersion}" is not a Kubernetes version like v1.35.4`);
  let apiVersions: string[] | undefined;
  if (values['api-versions']) {
    apiVersions = values['api-versions']
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter((v) => v !== '');
    const bad = apiVersions.find((v) => !isApiVersionEntry(v));
    if (bad !== undefined)
      throw new Error(`--api-versions: "${bad}" is not group/version or group/version/Kind`);
    apiVersions = checkCapabilities(
      { kubeVersion: '', apiVersions },
      '--api-versions',
    ).apiVersions.slice();
  }
  const hub = values.hub === true;
  for (const f of ['hub-url', 'ca-file', 'token-file'] as const)
    if (values[f] !== undefined && !hub) throw new Error(`--${f} is used only with --hub`);
  return {
    kubeVersion,
    apiVersions,
    hub,
    hubUrl: values['hub-url'],
    caFile: values['ca-file'],
    tokenFile: values['token-file'],
  };
}

// What the cluster's file declares; nothing when it is missing or broken (rendering
// reports that).
function declaredOf(tree: RepoTree, cluster: string): DeclaredCapabilities | undefined {
  const file = scanLayout(tree).clusters.get(cluster);
  const data = file === undefined ? undefined : tree.read(file);
  if (!file || !data) return undefined;
  try {
    return parseCluster(data.toString('utf8'), file, cluster).capabilities;
  } catch {
    return undefined;
  }
}

interface HubAnswer {
  reported: ClusterCapabilities | null;
  default: ClusterCapabilities;
}

async function fromHub(
  cluster: string,
  flags: CapabilityFlags,
  io: CliIo,
  fetchFn: Fetch,
): Promise<HubAnswer> {
  const base = hubBase(flags.hubUrl, io);
  const body = (await getJson(
    hubFetch(fetchFn, flags.caFile, io, flags.tokenFile),
    `${base}/api/v1/clusters/${encodeURIComponent(cluster)}/capabilities`,
  )) as Partial<HubAnswer>;
  // The hub's answer is checked like any report: it becomes helm's arguments.
  const check = (c: unknown, what: string): ClusterCapabilities => {
    const x = c as Partial<ClusterCapabilities> | undefined;
    if (typeof x?.kubeVersion !== 'string' || !Array.isArray(x.apiVersions))
      throw new Error(`the hub's answer has no ${what} capabilities`);
    return checkCapabilities(x as ClusterCapabilities, `the hub's ${what} capabilities`);
  };
  return {
    reported: body.reported ? check(body.reported, 'reported') : null,
    default: check(body.default, 'default'),
  };
}

/** The capabilities to render `cluster` with; throws (hub unreachable, bad answer). */
export async function capabilitiesFor(
  tree: RepoTree,
  cluster: string,
  flags: CapabilityFlags,
  io: CliIo,
  fetchFn: Fetch,
): Promise<ClusterCapabilities> {
  const hub = flags.hub ? await fromHub(cluster, flags, io, fetchFn) : undefined;
  const base = effectiveCapabilities(
    hub?.reported ?? undefined,
    declaredOf(tree, cluster),
    hub?.default ?? BUILTIN_CAPABILITIES,
  );
  return {
    kubeVersion: flags.kubeVersion ?? base.kubeVersion,
    apiVersions: flags.apiVersions ?? base.apiVersions,
  };
}
