// Per-cluster identities for simulated agents, obtained the way real agents obtain them:
// the administrator issues a single-use bootstrap token (Identity/AddCluster, what
// `flotilla cluster add` does), and the agent's own AgentIdentity registers with it (key,
// CSR, NATS user key) and stores the result. Where a real agent keeps it in a Secret, a
// simulated one keeps it in a file: SecretFiles is a fake of the agent's own KubeApi that
// stores Secrets only.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createUser } from '@nats-io/nkeys';
import { jwtAuthenticator } from '@nats-io/transport-node';
import type { Authenticator } from '@nats-io/transport-node';
import { AgentIdentity } from '@flotilla/agent';
import type { KubeApi } from '@flotilla/agent';
import { ValidationError, type KubeObject, type Logger } from '@flotilla/common';
import { loadFlotillaProto } from '@flotilla/proto';
import type { IdentityClient } from '@flotilla/proto';

/** Namespace the simulated agent "runs" in (its Secrets' namespace). */
const NAMESPACE = 'flotilla-system';
/** Secret the install manifests would hold the bootstrap token and CA in (agent's BOOTSTRAP_SECRET). */
const BOOTSTRAP_SECRET = 'flotilla-bootstrap';

/** A KubeApi that stores Secrets as JSON files in one directory; nothing else exists. */
export class SecretFiles implements KubeApi {
  constructor(private readonly dir: string) {}

  private file(namespace: string | undefined, name: string): string {
    return join(this.dir, `${namespace ?? ''}.${name}.secret.json`);
  }

  private only(kind: string): void {
    if (kind !== 'Secret')
      throw new ValidationError(`a simulated cluster holds Secrets only, not ${kind}`);
  }

  async resource(): Promise<never> {
    throw new ValidationError('a simulated cluster has no discovery');
  }

  async get(ref: {
    kind: string;
    namespace?: string;
    name: string;
  }): Promise<KubeObject | undefined> {
    this.only(ref.kind);
    try {
      return JSON.parse(await readFile(this.file(ref.namespace, ref.name), 'utf8')) as KubeObject;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async apply(obj: KubeObject): Promise<KubeObject> {
    this.only(obj.kind);
    await mkdir(this.dir, { recursive: true });
    const path = this.file(obj.metadata.namespace, obj.metadata.name);
    // Written aside and renamed: a simulator killed mid-write leaves the old identity whole.
    await writeFile(`${path}.tmp`, JSON.stringify(obj), { mode: 0o600 });
    await rename(`${path}.tmp`, path);
    return obj;
  }

  async delete(): Promise<boolean> {
    return false;
  }

  async list(): Promise<KubeObject[]> {
    return [];
  }
}

/** The administrator's Identity client (mTLS with adminDir's admin.crt/admin.key, trusting its ca.crt). */
export async function adminIdentityClient(hub: string, adminDir: string): Promise<IdentityClient> {
  const [ca, key, cert] = await Promise.all(
    ['ca.crt', 'admin.key', 'admin.crt'].map((f) => readFile(join(adminDir, f))),
  );
  const { Identity } = loadFlotillaProto();
  return new Identity(
    hub,
    grpc.credentials.createSsl(ca as Buffer, key as Buffer, cert as Buffer),
  ) as unknown as IdentityClient;
}

function addCluster(
  client: IdentityClient,
  name: string,
): Promise<{ token: string; caPem: string }> {
  return new Promise((resolve, reject) =>
    client.AddCluster({ name, labels: {}, tokenTtlMs: 0 }, (err, res) =>
      err || !res
        ? reject(new Error(`AddCluster ${name}: ${err?.details ?? 'no answer'}`))
        : resolve({ token: res.token, caPem: res.caPem }),
    ),
  );
}

/** A simulated agent's identity: channel credentials for the stream and the NATS authenticator. */
export interface SimIdentity {
  credentials: grpc.ChannelCredentials;
  nats: { authenticator: Authenticator; inboxPrefix: string };
  stop(): void;
}

/**
 * Loads the agent's stored identity or registers it: when nothing is stored, a bootstrap
 * token is issued with `admin` and put where the install manifests would put it.
 */
export async function obtainIdentity(opts: {
  cluster: string;
  hub: string;
  stateDir: string;
  admin: () => Promise<IdentityClient>;
  logger: Logger;
}): Promise<SimIdentity> {
  const kube = new SecretFiles(join(opts.stateDir, opts.cluster));
  const identitySecret = await kube.get({
    kind: 'Secret',
    namespace: NAMESPACE,
    name: 'flotilla-identity',
  });
  if (!identitySecret) {
    const { token, caPem } = await addCluster(await opts.admin(), opts.cluster);
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    await kube.apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: BOOTSTRAP_SECRET, namespace: NAMESPACE },
      data: { token: b64(token), 'ca.crt': b64(caPem) },
    });
  }
  const identity = new AgentIdentity({
    cluster: opts.cluster,
    hubAddress: opts.hub,
    namespace: NAMESPACE,
    kube,
    logger: opts.logger,
    natsKey: () => {
      const user = createUser();
      return { seed: new TextDecoder().decode(user.getSeed()), publicKey: user.getPublicKey() };
    },
  });
  const id = await identity.ready();
  if (!id) throw new Error(`${opts.cluster}: no identity (stopped while registering)`);
  return {
    credentials: identity.channelCredentials(),
    // As the agent does: the JWT is read at every NATS (re)connect, so a renewal is used.
    nats: {
      authenticator: (nonce?: string) => {
        const cur = identity.identity;
        if (!cur?.natsJwt || !cur.natsSeed) return undefined;
        return jwtAuthenticator(cur.natsJwt, new TextEncoder().encode(cur.natsSeed))(nonce);
      },
      inboxPrefix: `_INBOX_${opts.cluster}`,
    },
    stop: () => identity.stop(),
  };
}
