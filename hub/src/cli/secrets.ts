// Secret values in what the CLI prints: `flotilla render` and `flotilla diff` show a
// Secret's keys but not its values unless asked (--show-secrets), since their output
// lands in terminals, CI logs and pull-request comments, and a decrypted SOPS file is
// plaintext there.
import type { KubeObject } from '@flotilla/common';

/** What a hidden value prints as. */
export const REDACTED = '<redacted>';
/** A hidden value that differs from the other revision's (flotilla diff). */
export const REDACTED_CHANGED = '<redacted, changed>';

const SECRET_FIELDS = ['data', 'stringData'] as const;

/** True for a core/v1 Secret. */
function isSecret(o: KubeObject): boolean {
  return o.kind === 'Secret' && o.apiVersion === 'v1';
}

/**
 * The object with the values of a Secret's data and stringData hidden (other objects
 * as they are). With `other` (the same Secret at another revision), values that differ
 * from it, or that it lacks, print as REDACTED_CHANGED.
 */
export function redactSecret(o: KubeObject, other?: KubeObject): KubeObject {
  if (!isSecret(o)) return o;
  const out: Record<string, unknown> = { ...o };
  for (const field of SECRET_FIELDS) {
    const values = o[field];
    if (typeof values !== 'object' || values === null) continue;
    const before = (other?.[field] ?? {}) as Record<string, unknown>;
    out[field] = Object.fromEntries(
      Object.entries(values as Record<string, unknown>).map(([k, v]) => [
        k,
        other !== undefined && before[k] !== v ? REDACTED_CHANGED : REDACTED,
      ]),
    );
  }
  return out as KubeObject;
}
