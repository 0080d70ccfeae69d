// SOPS-encrypted files in bundles (age keys), decrypted at render time by the real
// `sops` program under the same sandbox and limits as kustomize and helm. The key never
// enters the hub's memory: sops reads the key file itself. sops verifies the file's MAC,
// so a file changed after encryption is refused. Plaintext goes nowhere but into the
// rendered objects: errors are built from sops' exit code, never from its output.
import { posix } from 'node:path';
import { ValidationError } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import type { ToolRunner } from './tools.js';

/** Formats of SOPS-encrypted files the renderer decrypts (by extension, then by content). */
export type SopsFormat = 'yaml' | 'json' | 'dotenv';

/**
 * The format of a SOPS-encrypted file, or undefined when it is not one: a .yaml/.yml or
 * .json file with top-level `sops` metadata holding a MAC, or a .env file with `sops_mac=`.
 */
export function sopsFormat(path: string, bytes: Buffer): SopsFormat | undefined {
  if (!bytes.includes('sops')) return undefined;
  const ext = posix.extname(path).toLowerCase();
  const text = bytes.toString('utf8');
  if (ext === '.yaml' || ext === '.yml')
    return /^sops:[ \t]*(#.*)?$/m.test(text) && /^[ \t]+mac:/m.test(text) ? 'yaml' : undefined;
  if (ext === '.json')
    return /"sops"\s*:\s*\{/.test(text) && /"mac"\s*:/.test(text) ? 'json' : undefined;
  if (ext === '.env') return /^sops_mac=/m.test(text) ? 'dotenv' : undefined;
  return undefined;
}

/** What the renderer needs to read an encrypted file. */
export interface SecretDecrypter {
  /** The plaintext of an encrypted file; throws ValidationError naming the file and why. */
  decrypt(path: string, bytes: Buffer, format: SopsFormat): Promise<Buffer>;
}

/** Settings of SopsDecrypter. */
export interface SopsOptions {
  /** File of age identities ("AGE-SECRET-KEY-1…" lines), or undefined when none is configured. */
  ageKeyFile: string | undefined;
  /** Where the key file is configured, for messages (default "render.sopsAgeKeyFile"). */
  keySetting?: string;
}

/** Decrypts with the `sops` program and an age key file. */
export class SopsDecrypter implements SecretDecrypter {
  private readonly keySetting: string;

  constructor(
    private readonly tools: ToolRunner,
    private readonly opts: SopsOptions,
  ) {
    this.keySetting = opts.keySetting ?? 'render.sopsAgeKeyFile';
  }

  async decrypt(path: string, bytes: Buffer, format: SopsFormat): Promise<Buffer> {
    const keyFile = this.opts.ageKeyFile;
    if (keyFile === undefined) {
      throw new ValidationError(
        `cannot decrypt this SOPS-encrypted file: no age key is configured (${this.keySetting})`,
        { file: path },
      );
    }
    const out = await this.tools.run({
      tool: 'sops',
      files: new Map([[path, bytes]]),
      args: (root) => [
        'decrypt',
        '--input-type',
        format,
        '--output-type',
        format,
        posix.join(root, path),
      ],
      errorFile: path,
      secretFiles: { SOPS_AGE_KEY_FILE: keyFile },
      explainExit: (code) => sopsFailure(code, bytes, this.keySetting),
    });
    return Buffer.from(out, 'utf8');
  }
}

// sops' exit codes (cmd/sops/codes): its messages are not shown, so none can carry
// plaintext; the recipients named are public keys.
function sopsFailure(code: number, bytes: Buffer, keySetting: string): string {
  const why = 'cannot decrypt this SOPS-encrypted file';
  switch (code) {
    case 128: {
      const recipients = [...new Set(bytes.toString('utf8').match(/age1[02-9ac-hj-np-z]{58}/g))];
      const forWhom =
        recipients.length > 0 ? ` (it is encrypted for ${recipients.join(', ')})` : '';
      return `${why}: none of the hub's age keys (${keySetting}) can decrypt its data key${forWhom}`;
    }
    case 51:
    case 52:
      return `${why}: its MAC does not match its content: it was changed after it was encrypted (tampered or corrupted), refused`;
    case 24:
    case 25:
      return `${why}: a value cannot be decrypted: the file was changed after it was encrypted (tampered or corrupted), refused`;
    case 2:
    case 92:
      return `${why}: sops cannot read it (exit ${code}): is it valid for its extension (.yaml, .json, .env)?`;
    default:
      return `${why}: sops failed (exit ${code})`;
  }
}

/** A tree with some files replaced (decrypted files over their ciphertext). */
export class OverlayTree implements RepoTree {
  constructor(
    private readonly base: RepoTree,
    private readonly over: ReadonlyMap<string, Buffer>,
  ) {}

  get rejected(): RepoTree['rejected'] {
    return this.base.rejected;
  }

  paths(): readonly string[] {
    return this.base.paths();
  }

  read(path: string): Buffer | undefined {
    return this.over.get(path) ?? this.base.read(path);
  }
}
