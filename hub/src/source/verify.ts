// Signed commits: when a source lists trusted OpenPGP keys, the commit it would hand to
// render must carry a valid signature by one of them. isomorphic-git has no
// verification of its own, so the `gpgsig` header is checked over the commit payload
// (the commit object without that header — what `git commit -S` signed) with openpgp.
import { readFile } from 'node:fs/promises';
import * as openpgp from 'openpgp';
import { ConfigError, FlotillaError } from '@flotilla/common';

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

/** Verifies commits against a fixed set of trusted OpenPGP public keys. */
export class CommitVerifier {
  private constructor(
    private readonly keys: openpgp.PublicKey[],
    /** Key ids (hex, upper-case) of every trusted key and subkey, for messages. */
    readonly keyIds: readonly string[],
  ) {}

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
  async verify(commit: SignedCommit): Promise<{ keyId: string }> {
    const sig = commit.gpgsig;
    if (!sig) throw new UntrustedCommitError(commit.oid, 'unsigned', 'it is not signed');
    if (!sig.includes('-----BEGIN PGP SIGNATURE-----')) {
      // SSH and X.509 signatures are valid Git, but we trust only OpenPGP keys.
      throw new UntrustedCommitError(
        commit.oid,
        'unsupported-signature',
        'it is signed, but not with OpenPGP',
      );
    }
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
        return { keyId: s.keyID.toHex().toUpperCase() };
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
