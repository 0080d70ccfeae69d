// Canonical JSON and content digests. The same value always gives the same bytes, so
// the same desired state always gives the same digest, on every hub.
import { createHash } from 'node:crypto';

/** JSON with object keys sorted at every level; arrays keep their order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  });
}

/** "sha256:<hex>" of a string or bytes. */
export function digestOf(data: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Digest of a value's canonical JSON. */
export function digestJson(value: unknown): string {
  return digestOf(canonicalJson(value));
}

/** The first 12 hex digits of a digest or SHA, for humans. */
export function shortDigest(digest: string): string {
  const hex = digest.startsWith('sha256:') ? digest.slice(7) : digest;
  return hex.slice(0, 12);
}
