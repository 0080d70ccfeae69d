// Is the dry-run result the same as the live object? Fields the server changes on every
// write (resourceVersion, managedFields timestamps, generation) and status are not
// desired state, so they are left out; what remains differs only if a write would
// change something a user cares about.
import { canonicalJson } from '@flotilla/common';
import type { KubeObject } from '@flotilla/common';

/** metadata fields that never count as a difference. */
export const IGNORED_METADATA = [
  'resourceVersion',
  'generation',
  'managedFields',
  'uid',
  'creationTimestamp',
] as const;

/** A copy without status and the server-maintained metadata fields. */
export function comparable(obj: KubeObject): KubeObject {
  const { status: _status, ...rest } = obj;
  const metadata: Record<string, unknown> = { ...obj.metadata };
  for (const f of IGNORED_METADATA) delete metadata[f];
  return { ...rest, metadata } as KubeObject;
}

/** True when a write of `desired` (a dry-run result) would leave `live` as it is. */
export function sameObject(desired: KubeObject, live: KubeObject): boolean {
  return canonicalJson(comparable(desired)) === canonicalJson(comparable(live));
}
