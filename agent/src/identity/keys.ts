// The agent's private key and certificate request. The key is generated here and
// never leaves the cluster: only the CSR (public key + name, signed) goes to the hub.
import { X509Certificate, generateKeyPairSync } from 'node:crypto';

/** Generates an RSA-2048 private key (PKCS#1 PEM). */
export function generatePrivateKey(): string {
  return generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }).privateKey;
}

/** A PKCS#10 request for CN=<cluster>, signed with keyPem. */
export async function createCsr(keyPem: string, cluster: string): Promise<string> {
  // Loaded only here (registration and renewal): node-forge costs ~5 MiB of heap and
  // ~10 MiB of RSS that a running agent would otherwise carry for nothing.
  const { default: forge } = await import('node-forge');
  const key = forge.pki.privateKeyFromPem(keyPem);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  csr.setSubject([{ name: 'commonName', value: cluster }]);
  csr.sign(key, forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

/** Validity of a PEM certificate and whether it names the cluster. */
export function describeCert(certPem: string): { cn: string; notBefore: number; notAfter: number } {
  const c = new X509Certificate(certPem);
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(c.subject)?.[1] ?? '';
  return { cn, notBefore: Date.parse(c.validFrom), notAfter: Date.parse(c.validTo) };
}
