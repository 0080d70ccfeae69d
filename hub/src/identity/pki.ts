// X.509 with node-forge (pure JS, Node 20 and 24): the hub's CA, certificates issued
// from agents' CSRs, and the hub's own serving certificate. Keys are generated with
// node:crypto (fast, native); forge only builds and signs the ASN.1.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';
import { ValidationError } from '@flotilla/common';

/** Subject organization of cluster certificates: the role a certificate grants. */
export const CLUSTER_ORG = 'flotilla-cluster';
/** Subject organization of administrator certificates (the `flotilla cluster` commands). */
export const ADMIN_ORG = 'flotilla-admin';
/** Subject organization of the hub's serving certificate. */
export const HUB_ORG = 'flotilla-hub';

/** How far before its issue a certificate is valid from: a minute, for clocks slightly behind. */
export const NOT_BEFORE_SLACK_MS = 60_000;

/** A certificate and its private key, both PEM. */
export interface KeyPairPem {
  certPem: string;
  keyPem: string;
}

/** What a certificate was issued as. */
export interface IssuedCert {
  certPem: string;
  /** Upper-case hex, as node's tls reports PeerCertificate.serialNumber. */
  serial: string;
  notAfter: Date;
}

/** Generates an RSA-2048 key; PKCS#1 PEM so forge reads it. */
export function generateKeyPem(): string {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }).privateKey;
}

function newSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] as number) & 0x7f; // positive INTEGER
  if (bytes[0] === 0) bytes[0] = 1; // no leading zero byte, so the hex round-trips
  return bytes.toString('hex').toUpperCase();
}

function baseCert(
  publicKey: forge.pki.PublicKey,
  cn: string,
  org: string,
  notAfter: Date,
): { cert: forge.pki.Certificate; serial: string } {
  const cert = forge.pki.createCertificate();
  const serial = newSerial();
  cert.publicKey = publicKey;
  cert.serialNumber = serial.toLowerCase();
  cert.validity.notBefore = new Date(Date.now() - NOT_BEFORE_SLACK_MS);
  cert.validity.notAfter = notAfter;
  cert.setSubject([
    { name: 'commonName', value: cn },
    { name: 'organizationName', value: org },
  ]);
  return { cert, serial };
}

/** Creates a self-signed CA (10 years). */
export function createCa(name = 'flotilla-hub-ca'): KeyPairPem {
  const keyPem = generateKeyPem();
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const pub = forge.pki.setRsaPublicKey(key.n, key.e);
  const { cert } = baseCert(pub, name, HUB_ORG, new Date(Date.now() + 10 * 365 * 86_400_000));
  cert.setIssuer(cert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem };
}

/** A loaded CA that signs certificates. */
export class CertificateAuthority {
  private readonly cert: forge.pki.Certificate;
  private readonly key: forge.pki.rsa.PrivateKey;

  constructor(readonly pair: KeyPairPem) {
    this.cert = forge.pki.certificateFromPem(pair.certPem);
    this.key = forge.pki.privateKeyFromPem(pair.keyPem);
  }

  /** The CA certificate (public), what agents and clients trust. */
  get caPem(): string {
    return this.pair.certPem;
  }

  private sign(cert: forge.pki.Certificate, extensions: object[]): string {
    cert.setIssuer(this.cert.subject.attributes);
    cert.setExtensions([
      { name: 'basicConstraints', cA: false },
      { name: 'subjectKeyIdentifier' },
      {
        name: 'authorityKeyIdentifier',
        keyIdentifier: this.cert.generateSubjectKeyIdentifier().getBytes(),
      },
      ...extensions,
    ]);
    cert.sign(this.key, forge.md.sha256.create());
    return forge.pki.certificateToPem(cert);
  }

  /** Issues a client certificate for `cn` from a CSR; the CSR's signature and CN are checked. */
  issueFromCsr(csrPem: string, cn: string, org: string, validityMs: number): IssuedCert {
    let csr: forge.pki.CertificateSigningRequest;
    try {
      csr = forge.pki.certificationRequestFromPem(csrPem);
    } catch (err) {
      throw new ValidationError(
        `certificate request is not a PEM PKCS#10 request: ${(err as Error).message}`,
      );
    }
    if (!csr.verify()) throw new ValidationError('certificate request signature does not verify');
    const subjectCn = csr.subject.getField('CN')?.value as string | undefined;
    if (subjectCn !== cn)
      throw new ValidationError(`certificate request names "${subjectCn ?? ''}", expected "${cn}"`);
    if (!csr.publicKey) throw new ValidationError('certificate request has no public key');
    const notAfter = new Date(Date.now() + validityMs);
    const { cert, serial } = baseCert(csr.publicKey, cn, org, notAfter);
    const certPem = this.sign(cert, [
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', clientAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 6, value: `spiffe://flotilla/${org}/${cn}` }] },
    ]);
    return { certPem, serial, notAfter };
  }

  /** Issues a key and certificate in one go (the hub's serving cert, the admin cert). */
  issueKeyPair(
    cn: string,
    org: string,
    validityMs: number,
    opts: { server?: boolean; hosts?: string[] } = {},
  ): KeyPairPem & IssuedCert {
    const keyPem = generateKeyPem();
    const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
    const notAfter = new Date(Date.now() + validityMs);
    const { cert, serial } = baseCert(forge.pki.setRsaPublicKey(key.n, key.e), cn, org, notAfter);
    const altNames = (opts.hosts ?? []).map((h) =>
      isIP(h) ? { type: 7, ip: h } : { type: 2, value: h },
    );
    const certPem = this.sign(cert, [
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: opts.server === true, clientAuth: opts.server !== true },
      ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
    ]);
    return { certPem, keyPem, serial, notAfter };
  }
}

/** Builds a CSR for `cn` signed with keyPem (used by tests and tools; the agent has its own). */
export function createCsr(keyPem: string, cn: string): string {
  const key = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey;
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject([{ name: 'commonName', value: cn }]);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}
