// Where the agent keeps its identity: the Secret flotilla-identity in its namespace
// (key, certificate, the hub's CA, NATS credentials), and where it finds the one-time
// bootstrap material the install manifests put there (Secret flotilla-bootstrap).
import type { KubeObject } from '@flotilla/common';
import type { KubeApi } from '../kube/types.js';

/** Name of the Secret holding the agent's identity. */
export const IDENTITY_SECRET = 'flotilla-identity';
/** Name of the Secret the install manifests create with the bootstrap token and CA. */
export const BOOTSTRAP_SECRET = 'flotilla-bootstrap';

/** The agent's stored identity (PEM and NATS strings). */
export interface StoredIdentity {
  keyPem: string;
  certPem: string;
  caPem: string;
  natsSeed: string;
  natsJwt: string;
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const text = (data: Record<string, string> | undefined, key: string): string =>
  Buffer.from(data?.[key] ?? '', 'base64').toString('utf8');

/** Reads and writes the identity Secret. */
export class IdentityStore {
  constructor(
    private readonly kube: KubeApi,
    readonly namespace: string,
  ) {}

  /** The stored identity, or undefined when there is none (or it is incomplete). */
  async load(signal?: AbortSignal): Promise<StoredIdentity | undefined> {
    const s = await this.kube.get(
      { apiVersion: 'v1', kind: 'Secret', namespace: this.namespace, name: IDENTITY_SECRET },
      signal,
    );
    const data = s?.data as Record<string, string> | undefined;
    const id = {
      keyPem: text(data, 'tls.key'),
      certPem: text(data, 'tls.crt'),
      caPem: text(data, 'ca.crt'),
      natsSeed: text(data, 'nats.seed'),
      natsJwt: text(data, 'nats.jwt'),
    };
    return id.keyPem && id.certPem && id.caPem ? id : undefined;
  }

  /** Writes the identity (server-side apply, so a renewal replaces it in one write). */
  async save(id: StoredIdentity, signal?: AbortSignal): Promise<void> {
    const secret: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'flotilla.dev/identity',
      metadata: {
        name: IDENTITY_SECRET,
        namespace: this.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'flotilla' },
      },
      data: {
        'tls.key': b64(id.keyPem),
        'tls.crt': b64(id.certPem),
        'ca.crt': b64(id.caPem),
        'nats.seed': b64(id.natsSeed),
        'nats.jwt': b64(id.natsJwt),
      },
    };
    await this.kube.apply(secret, { force: true, ...(signal ? { signal } : {}) });
  }

  /** The bootstrap token and CA from the install manifests' Secret, when present. */
  async bootstrap(signal?: AbortSignal): Promise<{ token: string; caPem: string } | undefined> {
    const s = await this.kube.get(
      { apiVersion: 'v1', kind: 'Secret', namespace: this.namespace, name: BOOTSTRAP_SECRET },
      signal,
    );
    const data = s?.data as Record<string, string> | undefined;
    const token = text(data, 'token').trim();
    return token ? { token, caPem: text(data, 'ca.crt') } : undefined;
  }
}
