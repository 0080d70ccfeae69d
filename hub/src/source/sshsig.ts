// SSH signatures as `ssh-keygen -Y sign` writes them (OpenSSH PROTOCOL.sshsig), verified
// with node:crypto: ed25519, ECDSA (nistp256/384/521) and RSA with SHA-2. FIDO (sk-*)
// keys and certificates are recognised and refused as unsupported.
import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';

const MAGIC = Buffer.from('SSHSIG');
const BEGIN = '-----BEGIN SSH SIGNATURE-----';
const END = '-----END SSH SIGNATURE-----';

/** The SSH wire data is malformed (truncated, bad lengths, wrong magic). */
export class SshFormatError extends Error {}

/** Well-formed, but a key or signature kind this verifier does not handle. */
export class SshUnsupportedError extends Error {}

/** A parsed SSHSIG blob. */
export interface SshSignature {
  /** Public key blob of the signer (compare with allowed signers byte for byte). */
  publicKey: Buffer;
  keyType: string;
  namespace: string;
  reserved: Buffer;
  /** "sha256" or "sha512" (what the message was hashed with). */
  hashAlgorithm: string;
  /** Signature algorithm, e.g. "ssh-ed25519", "rsa-sha2-512". */
  signatureType: string;
  /** The algorithm-specific signature bytes (for ECDSA, the two mpints). */
  signature: Buffer;
}

/** Reads SSH wire types (RFC 4251 §5) from a buffer; throws SshFormatError past the end. */
class WireReader {
  private pos = 0;
  constructor(private readonly buf: Buffer) {}

  u32(): number {
    if (this.pos + 4 > this.buf.length) throw new SshFormatError('truncated data');
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  bytes(): Buffer {
    const len = this.u32();
    if (this.pos + len > this.buf.length) throw new SshFormatError('truncated data');
    const v = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return v;
  }

  text(): string {
    return this.bytes().toString('utf8');
  }

  end(what: string): void {
    if (this.pos !== this.buf.length) throw new SshFormatError(`trailing bytes after ${what}`);
  }
}

/** An SSH `string`: uint32 length, then the bytes. */
function wireString(b: Buffer | string): Buffer {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

/** Parses an armored SSH signature ("-----BEGIN SSH SIGNATURE-----"); throws SshFormatError. */
export function parseSshSignature(armored: string): SshSignature {
  const text = armored.trim();
  if (!text.startsWith(BEGIN) || !text.endsWith(END))
    throw new SshFormatError('not an armored SSH signature');
  const body = text.slice(BEGIN.length, -END.length).replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new SshFormatError('armor is not base64');
  const blob = Buffer.from(body, 'base64');
  if (blob.length < MAGIC.length || !blob.subarray(0, MAGIC.length).equals(MAGIC))
    throw new SshFormatError('missing SSHSIG magic');
  const r = new WireReader(blob.subarray(MAGIC.length));
  const version = r.u32();
  if (version !== 1) throw new SshFormatError(`unknown SSHSIG version ${version}`);
  const publicKey = r.bytes();
  const namespace = r.text();
  const reserved = r.bytes();
  const hashAlgorithm = r.text();
  const sigBlob = r.bytes();
  r.end('the signature');
  const s = new WireReader(sigBlob);
  const signatureType = s.text();
  // The remainder (for sk-* keys: flags and counter too) belongs to the algorithm.
  const signature = sigBlob.subarray(4 + Buffer.byteLength(signatureType));
  return {
    publicKey,
    keyType: sshKeyType(publicKey),
    namespace,
    reserved,
    hashAlgorithm,
    signatureType,
    signature,
  };
}

/** The key type named inside a public key blob, e.g. "ssh-ed25519". */
export function sshKeyType(blob: Buffer): string {
  return new WireReader(blob).text();
}

/** The fingerprint `ssh-keygen -l` prints: "SHA256:" + unpadded base64 of the blob's SHA-256. */
export function sshFingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

const CURVES: Record<string, { crv: string; size: number; hash: string }> = {
  nistp256: { crv: 'P-256', size: 32, hash: 'sha256' },
  nistp384: { crv: 'P-384', size: 48, hash: 'sha384' },
  nistp521: { crv: 'P-521', size: 66, hash: 'sha512' },
};

/** OpenSSH refuses shorter RSA moduli (SSH_RSA_MINIMUM_MODULUS_SIZE). */
const RSA_MIN_BITS = 1024;

/** A public key blob loaded for verification. */
export interface SshPublicKey {
  type: string;
  key: KeyObject;
  /** ECDSA: the curve's digest; RSA: the modulus length in bytes. */
  ecdsaHash?: string;
  ecdsaSize?: number;
  rsaBytes?: number;
}

const b64url = (b: Buffer): string => b.toString('base64url');
const unsigned = (mpint: Buffer): Buffer => {
  let i = 0;
  while (i < mpint.length - 1 && mpint[i] === 0) i++;
  return mpint.subarray(i);
};

/** Loads an ed25519, ECDSA or RSA public key blob; throws SshUnsupportedError for other kinds, SshFormatError when malformed. */
export function loadSshPublicKey(blob: Buffer): SshPublicKey {
  const r = new WireReader(blob);
  const type = r.text();
  if (type.startsWith('sk-'))
    throw new SshUnsupportedError(`FIDO security-key keys (${type}) are not supported`);
  if (type.includes('-cert-v'))
    throw new SshUnsupportedError(`SSH certificates (${type}) are not supported`);
  try {
    if (type === 'ssh-ed25519') {
      const pk = r.bytes();
      r.end('the key');
      if (pk.length !== 32) throw new SshFormatError('ed25519 key is not 32 bytes');
      const key = createPublicKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: b64url(pk) },
        format: 'jwk',
      });
      return { type, key };
    }
    const curve = CURVES[type.replace(/^ecdsa-sha2-/, '')];
    if (type.startsWith('ecdsa-sha2-') && curve) {
      const name = r.text();
      const q = r.bytes();
      r.end('the key');
      if (`ecdsa-sha2-${name}` !== type)
        throw new SshFormatError(`curve ${name} does not match ${type}`);
      if (q.length !== 1 + 2 * curve.size || q[0] !== 4)
        throw new SshFormatError('ECDSA point is not an uncompressed point on its curve');
      const x = b64url(q.subarray(1, 1 + curve.size));
      const y = b64url(q.subarray(1 + curve.size));
      const key = createPublicKey({ key: { kty: 'EC', crv: curve.crv, x, y }, format: 'jwk' });
      return { type, key, ecdsaHash: curve.hash, ecdsaSize: curve.size };
    }
    if (type === 'ssh-rsa') {
      const e = unsigned(r.bytes());
      const n = unsigned(r.bytes());
      r.end('the key');
      if (n.length * 8 < RSA_MIN_BITS)
        throw new SshUnsupportedError('RSA key is shorter than 1024 bits');
      const key = createPublicKey({
        key: { kty: 'RSA', n: b64url(n), e: b64url(e) },
        format: 'jwk',
      });
      return { type, key, rsaBytes: n.length };
    }
  } catch (err) {
    if (err instanceof SshFormatError || err instanceof SshUnsupportedError) throw err;
    throw new SshFormatError(`invalid ${type} key: ${(err as Error).message}`);
  }
  throw new SshUnsupportedError(`SSH key type ${type} is not supported`);
}

const RSA_SIGNATURES: Record<string, string> = {
  'rsa-sha2-256': 'sha256',
  'rsa-sha2-512': 'sha512',
};

/** The bytes an SSHSIG signature covers (PROTOCOL.sshsig, "Signed Data"). */
function signedData(sig: SshSignature, message: Buffer): Buffer {
  const digest = createHash(sig.hashAlgorithm).update(message).digest();
  return Buffer.concat([
    MAGIC,
    wireString(sig.namespace),
    wireString(sig.reserved),
    wireString(sig.hashAlgorithm),
    wireString(digest),
  ]);
}

/** Whether `sig` is a valid signature of `message` by its own public key; throws SshUnsupportedError for kinds it cannot check. */
export function verifySshSignature(sig: SshSignature, message: Buffer): boolean {
  const pub = loadSshPublicKey(sig.publicKey);
  if (sig.hashAlgorithm !== 'sha256' && sig.hashAlgorithm !== 'sha512')
    throw new SshUnsupportedError(`message hash ${sig.hashAlgorithm} is not supported`);
  const data = signedData(sig, message);
  const r = new WireReader(sig.signature);
  if (pub.type === 'ssh-ed25519') {
    if (sig.signatureType !== 'ssh-ed25519') return false;
    const raw = r.bytes();
    r.end('the signature');
    return raw.length === 64 && cryptoVerify(null, data, pub.key, raw);
  }
  if (pub.ecdsaHash && pub.ecdsaSize) {
    if (sig.signatureType !== pub.type) return false;
    const inner = new WireReader(r.bytes());
    r.end('the signature');
    const [rr, ss] = [unsigned(inner.bytes()), unsigned(inner.bytes())];
    inner.end('the ECDSA signature');
    const size = pub.ecdsaSize;
    if (rr.length > size || ss.length > size) return false;
    const p1363 = Buffer.alloc(2 * size);
    rr.copy(p1363, size - rr.length);
    ss.copy(p1363, 2 * size - ss.length);
    return cryptoVerify(pub.ecdsaHash, data, { key: pub.key, dsaEncoding: 'ieee-p1363' }, p1363);
  }
  if (sig.signatureType === 'ssh-rsa')
    throw new SshUnsupportedError(
      'RSA signatures with SHA-1 (ssh-rsa) are not supported; sign with rsa-sha2-256 or rsa-sha2-512',
    );
  const hash = RSA_SIGNATURES[sig.signatureType];
  if (!hash || !pub.rsaBytes) return false;
  const raw = r.bytes();
  r.end('the signature');
  if (raw.length > pub.rsaBytes) return false;
  // OpenSSH accepts signatures shorter than the modulus and left-pads them; so do we.
  const padded = Buffer.concat([Buffer.alloc(pub.rsaBytes - raw.length), raw]);
  return cryptoVerify(hash, data, pub.key, padded);
}
