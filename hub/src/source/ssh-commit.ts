// The verdict on an SSH-signed commit, as `git verify-commit` with gpg.format=ssh reaches
// it: the SSHSIG must be for namespace "git", by a key listed in an allowed_signers file
// whose line allows namespace "git" and whose validity window holds the committer time.
import { namespaceAllowed } from './allowed-signers.js';
import type { AllowedSigner } from './allowed-signers.js';
import {
  SshFormatError,
  SshUnsupportedError,
  parseSshSignature,
  sshFingerprint,
  verifySshSignature,
} from './sshsig.js';
import type { SshSignature } from './sshsig.js';

/** Git signs commits and tags in this SSHSIG namespace. */
export const GIT_NAMESPACE = 'git';

/** An SSH signature check's outcome: who signed, or why the commit is refused (an UntrustedReason). */
export type SshVerdict =
  | { ok: true; principals: string; fingerprint: string }
  | {
      ok: false;
      reason: 'unknown-key' | 'bad-signature' | 'unsupported-signature';
      detail: string;
    };

/** Checks an armored SSH signature over a commit payload against the allowed signers. */
export function checkSshCommit(
  signers: readonly AllowedSigner[],
  armored: string,
  payload: string,
): SshVerdict {
  let sig: SshSignature;
  try {
    sig = parseSshSignature(armored);
  } catch (err) {
    if (!(err instanceof SshFormatError)) throw err;
    return fail('bad-signature', `its SSH signature cannot be parsed (${err.message})`);
  }
  const fp = sshFingerprint(sig.publicKey);
  if (sig.namespace !== GIT_NAMESPACE)
    return fail(
      'bad-signature',
      `its signature by SSH key ${fp} is for namespace "${sig.namespace}", not "${GIT_NAMESPACE}"`,
    );
  const listed = signers.filter((s) => s.publicKey.equals(sig.publicKey));
  let valid: boolean;
  try {
    valid = verifySshSignature(sig, Buffer.from(payload, 'utf8'));
  } catch (err) {
    if (err instanceof SshUnsupportedError)
      return fail('unsupported-signature', `it is signed with SSH key ${fp}: ${err.message}`);
    if (err instanceof SshFormatError)
      return fail('bad-signature', `its signature by SSH key ${fp} is malformed (${err.message})`);
    throw err;
  }
  if (listed.length === 0)
    return fail('unknown-key', `it is signed by SSH key ${fp}, which is not trusted`);
  const who = `SSH key ${fp} (${listed[0]!.principals})`;
  if (!valid) return fail('bad-signature', `its signature by ${who} does not verify`);
  const forGit = listed.filter((s) => namespaceAllowed(s.namespaces, GIT_NAMESPACE));
  if (forGit.length === 0)
    return fail('unknown-key', `${who} is not trusted for namespace "${GIT_NAMESPACE}"`);
  const when = committerTime(payload);
  const inWindow = forGit.filter((s) => when !== undefined && withinWindow(s, when));
  const signer = inWindow[0];
  if (!signer) {
    const made = when === undefined ? 'has no committer time' : `was made ${iso(when)}`;
    return fail(
      'unknown-key',
      `${who} is trusted only ${windowOf(forGit[0]!)}, and the commit ${made}`,
    );
  }
  return { ok: true, principals: signer.principals, fingerprint: fp };
}

/** The committer time (Unix seconds) of a commit object; git checks key validity against it. */
export function committerTime(payload: string): number | undefined {
  const end = payload.indexOf('\n\n');
  const headers = end === -1 ? payload : payload.slice(0, end);
  const m = /^committer .* (\d+) [+-]\d{4}$/m.exec(headers);
  return m ? Number(m[1]) : undefined;
}

// Both ends inclusive, as in OpenSSH's check_allowed_keys_line.
const withinWindow = (s: AllowedSigner, t: number): boolean =>
  (s.validAfter === undefined || t >= s.validAfter) &&
  (s.validBefore === undefined || t <= s.validBefore);

function windowOf(s: AllowedSigner): string {
  const parts = [
    ...(s.validAfter !== undefined ? [`from ${iso(s.validAfter)}`] : []),
    ...(s.validBefore !== undefined ? [`until ${iso(s.validBefore)}`] : []),
  ];
  return parts.join(' ');
}

const iso = (seconds: number): string => new Date(seconds * 1000).toISOString();
const fail = (reason: Exclude<SshVerdict, { ok: true }>['reason'], detail: string): SshVerdict => ({
  ok: false,
  reason,
  detail,
});
