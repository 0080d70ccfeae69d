// SOPS fixtures for tests: age key pairs, and files encrypted with the real `sops`
// program (tools/build-tools.sh builds it). Keys are made per test run, never committed.
import { execFile } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandFailedError } from './errors.js';

/** An age X25519 identity and its recipient, in age's own text forms. */
export interface AgeKeyPair {
  /** "AGE-SECRET-KEY-1…": a line of an age key file (SOPS_AGE_KEY_FILE). */
  identity: string;
  /** "age1…": what a file is encrypted for. */
  recipient: string;
}

const CHARSET = 'qpzry9x8gf2tvdw0s3jn54khce6mua7l';
const GENERATOR = [0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3];

function polymod(values: number[]): number {
  let chk = 1;
  for (const v of values) {
    const top = chk >>> 25;
    chk = ((chk & 0x1ffffff) << 5) ^ v;
    for (let i = 0; i < 5; i++) if ((top >>> i) & 1) chk ^= GENERATOR[i] as number;
  }
  return chk;
}

// Bech32 (BIP 173), which age uses for its keys (without the 90-character limit).
function bech32(hrp: string, bytes: Buffer): string {
  const data: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      data.push((acc >>> bits) & 31);
    }
  }
  if (bits > 0) data.push((acc << (5 - bits)) & 31);
  const codes = [...hrp].map((c) => c.charCodeAt(0));
  const expanded = [...codes.map((c) => c >>> 5), 0, ...codes.map((c) => c & 31)];
  const mod = polymod([...expanded, ...data, 0, 0, 0, 0, 0, 0]) ^ 1;
  const checksum = Array.from({ length: 6 }, (_, i) => (mod >>> (5 * (5 - i))) & 31);
  return `${hrp}1${[...data, ...checksum].map((d) => CHARSET[d]).join('')}`;
}

/** A fresh age key pair (X25519, as `age-keygen` makes). */
export function ageKeyPair(): AgeKeyPair {
  const { privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' }) as { d: string; x: string };
  return {
    identity: bech32('age-secret-key-', Buffer.from(jwk.d, 'base64url')).toUpperCase(),
    recipient: bech32('age', Buffer.from(jwk.x, 'base64url')),
  };
}

/** Writes an age key file holding these identities; returns its path. */
export async function writeAgeKeyFile(path: string, keys: readonly AgeKeyPair[]): Promise<string> {
  await writeFile(path, keys.map((k) => `${k.identity}\n`).join(''), { mode: 0o600 });
  return path;
}

/** Options of sopsEncrypt. */
export interface SopsEncryptOptions {
  /** The sops program (binaryPaths().sops). */
  sops: string;
  /** Recipients the file is encrypted for. */
  recipients: readonly string[];
  /** yaml (default), json or dotenv. */
  format?: 'yaml' | 'json' | 'dotenv';
  /** Only keys matching this are encrypted (e.g. "^(data|stringData)$"); default all. */
  encryptedRegex?: string;
}

/** Encrypts `plaintext` with the real sops program; resolves the encrypted text. */
export async function sopsEncrypt(plaintext: string, opts: SopsEncryptOptions): Promise<string> {
  const format = opts.format ?? 'yaml';
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-sops-'));
  const file = join(dir, `plain.${format === 'dotenv' ? 'env' : format}`);
  await writeFile(file, plaintext, { mode: 0o600 });
  const args = [
    'encrypt',
    '--input-type',
    format,
    '--output-type',
    format,
    '--age',
    opts.recipients.join(','),
    ...(opts.encryptedRegex !== undefined ? ['--encrypted-regex', opts.encryptedRegex] : []),
    file,
  ];
  try {
    return await new Promise((resolve, reject) => {
      execFile(
        opts.sops,
        args,
        // HOME elsewhere: no user .sops.yaml or keys take part.
        { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir }, cwd: dir },
        (err, stdout, stderr) => {
          if (err) {
            const code = typeof err.code === 'number' ? err.code : null;
            reject(new CommandFailedError(`sops ${args.join(' ')}`, code, stderr));
          } else resolve(stdout);
        },
      );
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
