// Who changed it: the live object's managedFields say which field manager owns each
// field. A manager other than ours that owns a drifted path made the change; when no
// one owns it (a field was removed), the most recent non-Flotilla writer is the best guess.
import type { KubeObject } from '@flotilla/common';
import { FIELD_MANAGER } from '../kube/client.js';

interface ManagedFieldsEntry {
  manager?: string;
  operation?: string;
  time?: string;
  fieldsV1?: Record<string, unknown>;
}

function unescape(seg: string): string {
  return seg.replace(/~1/g, '/').replace(/~0/g, '~');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The fieldsV1 key of a list item: "k:{...}" (keyed lists), "v:<json>" (sets) or "i:<n>". */
function itemNode(node: Record<string, unknown>, item: unknown, index: number): unknown {
  for (const [key, child] of Object.entries(node)) {
    if (key.startsWith('k:') && isObject(item)) {
      try {
        const keys = JSON.parse(key.slice(2)) as Record<string, unknown>;
        if (Object.entries(keys).every(([k, v]) => JSON.stringify(item[k]) === JSON.stringify(v)))
          return child;
      } catch {
        // a malformed key owns nothing we can match
      }
    } else if (key.startsWith('v:') && key.slice(2) === JSON.stringify(item)) return child;
    else if (key === `i:${index}`) return child;
  }
  return undefined;
}

/** True when this fieldsV1 tree owns the JSON pointer `path` of `live` (or a field below it). */
export function ownsPath(
  fields: Record<string, unknown> | undefined,
  live: unknown,
  path: string,
): boolean {
  let node: unknown = fields;
  let value: unknown = live;
  for (const seg of path.split('/').slice(1).map(unescape)) {
    if (!isObject(node)) return false;
    if (Array.isArray(value)) {
      const i = Number(seg);
      node = itemNode(node, value[i], i);
      value = value[i];
    } else {
      node = node[`f:${seg}`];
      value = isObject(value) ? value[seg] : undefined;
    }
    if (node === undefined) return false;
  }
  return node !== undefined;
}

/** The field manager that most likely made these changes, "" when unknown. */
export function changedBy(live: KubeObject | undefined, paths: readonly string[]): string {
  const entries = ((live?.metadata.managedFields ?? []) as ManagedFieldsEntry[]).filter(
    (e) => e.manager && e.manager !== FIELD_MANAGER,
  );
  for (const e of entries)
    if (paths.some((p) => ownsPath(e.fieldsV1, live, p))) return e.manager as string;
  const latest = [...entries].sort((a, b) => (a.time ?? '').localeCompare(b.time ?? '')).pop();
  return latest?.manager ?? '';
}
