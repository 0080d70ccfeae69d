// Signed commits: when a source lists trusted OpenPGP keys or SSH allowed signers, the
// commit it would hand to render must carry a valid signature by one of them.
// isomorphic-git has no verification of its own, so the `gpgsig` header is checked over
// the commit payload (the commit object without that header — what `git commit -S`
// signed): OpenPGP with openpgp, SSH (gpg.format=ssh) with node:crypto (ssh-commit.ts).
import { readFile } from 'node:fs/promises';
import * as openpgp from 'openpgp';
import { ConfigError, FlotillaError, LogFields } from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import { readAllowedSigners } from './allowed-signers.js';
import type { AllowedSigner } from './allowed-signers.js';
import { checkSshCommit } from './ssh-commit.js';

/** Why a commit was refused; stable, in the error's details.reason. */
export type UntrustedReason =
  'unsigned' | 'unsupported-signature' | 'unknown-key' | 'bad-signature';

/** A commit that must not be rendered: unsigned, or not signed by a trusted key. */
export class UntrustedCommitError extends FlotillaError {
  readonly reason: UntrustedReason;
  constructor(commit: string, reason: UntrustedReason, detail: string) {
    super('VALIDATION_FAILED', `commit ${commit} is not trusted: ${detail}`, {
      details: { commit, reason },
    });
    this.reason = reason;
  }
}

/** A commit object's signature and the bytes it signs (isomorphic-git's readCommit gives both). */
export interface SignedCommit {
  oid: string;
  /** Armored signature from the gpgsig header, if any. */
  gpgsig: string | undefined;
  /** The commit object without the gpgsig header. */
  payload: string;
}

/** Who signed a trusted commit. */
export interface VerifiedSignature {
  kind: 'openpgp' | 'ssh';
  /** OpenPGP key id (hex), or the SSH key's "SHA256:…" fingerprint. */
  keyId: string;
  /** SSH: the principals of its allowed_signers line, e.g. "alice@example.com". */
  principals?: string;
}

/** The trusted keys of a source's `verify` section, as files. */
export interface VerifyFiles {
  openpgpKeyFiles: readonly string[];
  sshAllowedSignersFiles: readonly string[];
}

/** Verifies commits against fixed sets of trusted OpenPGP public keys and SSH allowed signers. */
export class CommitVerifier {
  private constructor(
    private readonly keys: openpgp.PublicKey[],
    /** Key ids (hex, upper-case) of every trusted key and subkey, for messages. */
    readonly keyIds: readonly string[],
    /** Trusted SSH keys (allowed_signers lines); empty = SSH signatures are not trusted. */
    readonly sshSigners: readonly AllowedSigner[] = [],
    private readonly log?: Logger,
  ) {}

  /** Reads a source's `verify` key files (either list may be empty, not both); errors name `${field}.openpgpKeys[i]` / `${field}.sshAllowedSigners[j]`. */
  static async fromConfig(
    files: VerifyFiles,
    field: string,
    logger?: Logger,
  ): Promise<CommitVerifier> {
    const pgp =
      files.openpgpKeyFiles.length > 0
        ? await CommitVerifier.fromFiles(files.openpgpKeyFiles, `${field}.openpgpKeys`)
        : undefined;
    const ssh = await readAllowedSigners(
      files.sshAllowedSignersFiles,
      `${field}.sshAllowedSigners`,
    );
    if (!pgp && ssh.length === 0)
      throw new ConfigError(field, 'give openpgpKeys, sshAllowedSigners or both');
    return new CommitVerifier(pgp?.keys ?? [], pgp?.keyIds ?? [], ssh, logger);
  }

  /** Parses armored public keys (several per text allowed); throws ConfigError naming `field`. */
  static async fromArmored(
    texts: readonly { text: string; field: string }[],
  ): Promise<CommitVerifier> {
    const keys: openpgp.PublicKey[] = [];
    for (const { text, field } of texts) {
      const parsed: openpgp.Key[] = [];
      try {
        // readKeys reads only the first armor block; key files often hold several.
        for (const block of armorBlocks(text))
          parsed.push(...(await openpgp.readKeys({ armoredKeys: block })));
      } catch (err) {
        throw new ConfigError(
          field,
          `not an armored OpenPGP public key: ${(err as Error).message}`,
          { cause: err },
        );
      }
      for (const k of parsed) {
        if (k.isPrivate())
          throw new ConfigError(field, 'contains a private key; give only the public key');
        keys.push(k as openpgp.PublicKey);
      }
    }
    if (keys.length === 0)
      throw new ConfigError(texts[0]?.field ?? 'verify.openpgpKeys', 'no keys given');
    const ids = keys.flatMap((k) => k.getKeyIDs().map((id) => id.toHex().toUpperCase()));
    return new CommitVerifier(keys, [...new Set(ids)].sort());
  }

  /** Reads armored key files; errors name the field `${field}[i]`. */
  static async fromFiles(files: readonly string[], field: string): Promise<CommitVerifier> {
    const texts: { text: string; field: string }[] = [];
    for (const [i, file] of files.entries()) {
      try {
        texts.push({ text: await readFile(file, 'utf8'), field: `${field}[${i}]` });
      } catch (err) {
        throw new ConfigError(`${field}[${i}]`, `cannot read ${file}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
    return CommitVerifier.fromArmored(texts);
  }

  /** Resolves when the commit is signed by a trusted key; throws UntrustedCommitError otherwise. */
  async verify(commit: SignedCommit): Promise<VerifiedSignature> {
    const sig = commit.gpgsig;
    if (!sig) throw new UntrustedCommitError(commit.oid, 'unsigned', 'it is not signed');
    const kind = sig.includes('-----BEGIN PGP SIGNATURE-----')
      ? 'OpenPGP'
      : sig.includes('-----BEGIN SSH SIGNATURE-----')
        ? 'SSH'
        : undefined;
    // X.509 (gpgsm) signatures are valid Git, but we trust only OpenPGP and SSH keys.
    if (!kind)
      throw new UntrustedCommitError(
        commit.oid,
        'unsupported-signature',
        'it is signed, but not with OpenPGP or SSH',
      );
    if ((kind === 'OpenPGP' ? this.keys.length : this.sshSigners.length) === 0)
      throw new UntrustedCommitError(
        commit.oid,
        'unsupported-signature',
        `it is signed with ${kind}, but no ${kind} keys are trusted`,
      );
    const verified =
      kind === 'SSH' ? this.verifySsh(commit, sig) : await this.verifyOpenPgp(commit, sig);
    this.log?.info(
      {
        [LogFields.revision]: commit.oid,
        signer: verified.principals ?? verified.keyId,
        key: verified.keyId,
      },
      'commit signature verified',
    );
    return verified;
  }

  private verifySsh(commit: SignedCommit, sig: string): VerifiedSignature {
    const verdict = checkSshCommit(this.sshSigners, sig, commit.payload);
    if (!verdict.ok) throw new UntrustedCommitError(commit.oid, verdict.reason, verdict.detail);
    return { kind: 'ssh', keyId: verdict.fingerprint, principals: verdict.principals };
  }

  private async verifyOpenPgp(commit: SignedCommit, sig: string): Promise<VerifiedSignature> {
    let signature: openpgp.Signature;
    try {
      signature = await openpgp.readSignature({ armoredSignature: sig });
    } catch (err) {
      throw new UntrustedCommitError(
        commit.oid,
        'bad-signature',
        `its signature cannot be parsed (${(err as Error).message})`,
      );
    }
    const signer = signature.getSigningKeyIDs().map((id) => id.toHex().toUpperCase());
    if (!signer.some((id) => this.keyIds.includes(id))) {
      throw new UntrustedCommitError(
        commit.oid,
        'unknown-key',
        `it is signed by key ${signer.join(', ') || '(no key id)'}, which is not trusted`,
      );
    }
    // Git signs the raw commit bytes: verify as binary data, never as canonicalized text.
    const message = await openpgp.createMessage({ binary: Buffer.from(commit.payload, 'utf8') });
    const result = await openpgp.verify({ message, signature, verificationKeys: this.keys });
    for (const s of result.signatures) {
      try {
        await s.verified;
        return { kind: 'openpgp', keyId: s.keyID.toHex().toUpperCase() };
      } catch {
        // try the next signature packet; none valid → bad signature below
      }
    }
    throw new UntrustedCommitError(
      commit.oid,
      'bad-signature',
      `its signature by key ${signer.join(', ')} does not verify`,
    );
  }
}

const ARMOR_BLOCK =
  /-----BEGIN PGP (PUBLIC|PRIVATE) KEY BLOCK-----[\s\S]*?-----END PGP \1 KEY BLOCK-----/g;

/** The armored key blocks in a text; the whole text when it has none (so the parser says what is wrong). */
function armorBlocks(text: string): string[] {
  const blocks = text.match(ARMOR_BLOCK);
  return blocks && blocks.length > 0 ? blocks : [text];
}

/**
 * What `git commit -S` signed: the raw commit object without its `gpgsig` header and that
 * header's continuation lines (git's parse_signed_commit). isomorphic-git's own payload
 * is right only for OpenPGP armor, so the source computes it from the object itself.
 */
export function commitPayload(raw: string): string {
  const end = raw.indexOf('\n\n');
  const head = end === -1 ? raw : raw.slice(0, end + 1);
  const kept: string[] = [];
  let inSig = false;
  for (const line of head.split('\n')) {
    if (line.startsWith('gpgsig ')) inSig = true;
    else if (!(inSig && line.startsWith(' '))) {
      inSig = false;
      kept.push(line);
    }
  }
  return kept.join('\n') + (end === -1 ? '' : raw.slice(end + 1));
}
