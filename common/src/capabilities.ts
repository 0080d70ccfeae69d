// What a cluster serves, as Helm's `.Capabilities` sees it: its Kubernetes version and its
// API versions, in the form `helm template --api-versions` and
// `.Capabilities.APIVersions.Has` understand — every served group-version ("apps/v1",
// "v1", "monitoring.coreos.com/v1") and one "group-version/Kind" entry per resource
// ("apps/v1/Deployment", "v1/Pod"), as `helm install` gathers them from discovery.
// The agent reports them, the hub bounds and stores them, the renderer hands them to
// helm. Plain data: it crosses the wire, the KV store and a worker boundary.
import { ValidationError } from './errors.js';
import { digestJson } from './hash.js';

/** A cluster's Kubernetes version and served API versions. */
export interface ClusterCapabilities {
  /** Kubernetes version ("v1.35.4", helm --kube-version); "" when unknown. */
  kubeVersion: string;
  /** Served group-versions and "group-version/Kind" entries, sorted, no duplicates (helm --api-versions). */
  apiVersions: readonly string[];
}

/**
 * Bounds on capabilities from outside (agents, Git, flags): every side checks the same
 * ones. A report travels in one gRPC message, and the hub takes none over 64 KiB
 * (MAX_RECEIVE_MESSAGE_BYTES): the entries may take 56 KiB of it, the rest of a hello
 * fits in what is left.
 */
export const CAPABILITIES_LIMITS = {
  /** Most API version entries of one cluster (5,000). */
  maxApiVersions: 5_000,
  /** Longest entry: a group (253) + version (63) + Kind (63) and separators fit (400). */
  maxEntryLength: 400,
  /** Most bytes the entries take in a message, 3 bytes of framing each included (56 KiB): apiVersionsSize. */
  maxEncodedBytes: 56 * 1024,
  /** Longest Kubernetes version string (64). */
  maxKubeVersionLength: 64,
} as const;

/** Bytes the entries take in a protobuf message (each: its length plus at most 3 bytes of framing). */
export function apiVersionsSize(entries: readonly string[]): number {
  let n = 0;
  for (const e of entries) n += Buffer.byteLength(e) + 3;
  return n;
}

// A semantic version as helm parses it ("v1.35.4", "1.29", "v1.30.2-gke.1587003").
const KUBE_VERSION = /^v?\d+\.\d+(\.\d+)?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
// group/version/Kind, version/Kind, group/version or version: DNS names, no commas or
// spaces (helm splits --api-versions at commas) and no leading "-" (never a flag).
const API_VERSION_ENTRY =
  /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?(\/[a-z0-9]([-a-z0-9]*[a-z0-9])?)?(\/[A-Za-z][A-Za-z0-9]*)?$/;

/** True for a Kubernetes version helm accepts as --kube-version. */
export function isKubeVersion(text: string): boolean {
  return text.length <= CAPABILITIES_LIMITS.maxKubeVersionLength && KUBE_VERSION.test(text);
}

/** True for one well-formed --api-versions entry. */
export function isApiVersionEntry(text: string): boolean {
  return text.length <= CAPABILITIES_LIMITS.maxEntryLength && API_VERSION_ENTRY.test(text);
}

/**
 * Checks capabilities from outside against CAPABILITIES_LIMITS and returns them sorted
 * without duplicates; throws ValidationError naming `what` and the first problem.
 */
export function checkCapabilities(
  input: { kubeVersion: string; apiVersions: readonly string[] },
  what: string,
): ClusterCapabilities {
  const { kubeVersion, apiVersions } = input;
  if (kubeVersion !== '' && !isKubeVersion(kubeVersion)) {
    throw new ValidationError(
      `${what}: Kubernetes version "${kubeVersion.slice(0, 80)}" is not a version like v1.35.4`,
    );
  }
  if (apiVersions.length > CAPABILITIES_LIMITS.maxApiVersions) {
    throw new ValidationError(
      `${what}: ${apiVersions.length} API versions, more than the limit of ${CAPABILITIES_LIMITS.maxApiVersions}`,
    );
  }
  for (const entry of apiVersions) {
    if (!isApiVersionEntry(entry)) {
      throw new ValidationError(
        `${what}: API version "${entry.slice(0, 80)}" is not group/version or group/version/Kind`,
      );
    }
  }
  const bytes = apiVersionsSize(apiVersions);
  if (bytes > CAPABILITIES_LIMITS.maxEncodedBytes) {
    throw new ValidationError(
      `${what}: API versions take ${bytes} bytes, more than the limit of ${CAPABILITIES_LIMITS.maxEncodedBytes}`,
    );
  }
  return { kubeVersion, apiVersions: [...new Set(apiVersions)].sort() };
}

/** Content digest of capabilities (equal content, equal digest): part of helm's cache key. */
export function capabilitiesDigest(c: ClusterCapabilities): string {
  return digestJson({ kubeVersion: c.kubeVersion, apiVersions: c.apiVersions });
}
