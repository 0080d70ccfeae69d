// Certificates for test servers: a CA made for this test process and server
// certificates it signs, for loopback names. Made with node-forge (keys from node:crypto),
// so no openssl is needed; nothing here is ever trusted outside the test that made it.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import forge from 'node-forge';

/** A certificate and its key, PEM. */
export interface TestCertificate {
  certPem: string;
  keyPem: string;
}

/** A test CA: its certificate (what clients trust) and a way to issue server certificates. */
export interface TestCa {
  /** The CA certificate, PEM. */
  caPem: string;
  /** A server certificate for hosts (names and IPs; default 127.0.0.1, ::1, localhost). */
  issueServer(hosts?: string[]): TestCertificate;
}

function rsaKey(): { pem: string; key: forge.pki.rsa.PrivateKey } {
  const pem = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  }).privateKey;
  return { pem, key: forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey };
}

function certificate(key: forge.pki.rsa.PrivateKey, cn: string): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
  // Positive, no leading zero byte.
  cert.serialNumber = '01' + randomBytes(15).toString('hex');
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 7 * 86_400_000);
  cert.setSubject([
    { name: 'commonName', value: cn },
    { name: 'organizationName', value: 'flotilla-test' },
  ]);
  return cert;
}

/** Creates a CA (valid 7 days) for one test process or one server. */
export function createTestCa(name = 'flotilla-test-ca'): TestCa {
  const { key } = rsaKey();
  const ca = certificate(key, name);
  ca.setIssuer(ca.subject.attributes);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(key, forge.md.sha256.create());
  return {
    caPem: forge.pki.certificateToPem(ca),
    issueServer(hosts = ['127.0.0.1', '::1', 'localhost']) {
      const server = rsaKey();
      const cert = certificate(server.key, hosts[0] ?? 'localhost');
      cert.setIssuer(ca.subject.attributes);
      cert.setExtensions([
        { name: 'basicConstraints', cA: false },
        { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
        { name: 'extKeyUsage', serverAuth: true },
        {
          name: 'subjectAltName',
          altNames: hosts.map((h) => (isIP(h) ? { type: 7, ip: h } : { type: 2, value: h })),
        },
      ]);
      cert.sign(key, forge.md.sha256.create());
      return { certPem: forge.pki.certificateToPem(cert), keyPem: server.pem };
    },
  };
}
