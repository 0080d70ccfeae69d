// The agent's identity lifecycle:
//
//   stored Secret valid? ──yes──► use it
//        └─no──► bootstrap token (file or Secret flotilla-bootstrap) + new key + CSR
//                 ──Register (TLS, no client cert)──► certificate ──► stored ──► use it
//   at 2/3 of the certificate's life ──Renew (mTLS)──► new certificate ──► stored ──►
//   the certificate provider hands it to new connections; the open stream is not dropped.
import * as grpc from '@grpc/grpc-js';
import {
  Backoff,
  ConfigError,
  LogFields,
  UnavailableError,
  errorMessage,
  sleep,
} from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import { loadFlotillaProto } from '@flotilla/proto';
import type { Credentials__Output, IdentityClient } from '@flotilla/proto';
import type { KubeApi } from '../kube/types.js';
import { createCsr, describeCert, generatePrivateKey } from './keys.js';
import { hubAddresses } from '../connection/hub-connection.js';
import { IdentityStore } from './store.js';
import type { StoredIdentity } from './store.js';

/** Renew when this fraction of the certificate's lifetime has passed. */
export const RENEW_AT_FRACTION = 2 / 3;
/** Longest wait before a failed renewal is tried again. */
export const RENEW_RETRY_MAX_MS = 30_000;

/**
 * The wait before a failed renewal is tried again, given how long the certificate has
 * left: a quarter of that, between 1 s and 30 s, so a short-lived certificate is never let
 * lapse by a wait longer than its life.
 */
export function renewRetryDelayMs(leftMs: number): number {
  return Math.round(Math.min(RENEW_RETRY_MAX_MS, Math.max(1_000, leftMs / 4)));
}

/** Options of AgentIdentity. */
export interface AgentIdentityOptions {
  cluster: string;
  hubAddress: string;
  namespace: string;
  kube: KubeApi;
  logger: Logger;
  /** Bootstrap token from --bootstrap-token-file; otherwise the Secret flotilla-bootstrap is read. */
  bootstrapToken?: string | undefined;
  /** CA of the hub from --ca-file; otherwise the bootstrap Secret's or the stored one. */
  caPem?: string | undefined;
  /** Creates the agent's NATS user key: returns seed and public key (injected, so tests need no NATS). */
  natsKey?: () => { seed: string; publicKey: string };
  retryInitialMs?: number;
  retryMaxMs?: number;
}

/** A grpc-js certificate provider whose material can be replaced while connections are open. */
export class MutableCertificateProvider implements grpc.experimental.CertificateProvider {
  private ca: Buffer | undefined;
  private identity: { certificate: Buffer; privateKey: Buffer } | undefined;
  private readonly caListeners = new Set<grpc.experimental.CaCertificateUpdateListener>();
  private readonly idListeners = new Set<grpc.experimental.IdentityCertificateUpdateListener>();

  /** Replaces CA and identity; listeners (new handshakes) see them at once. */
  update(id: StoredIdentity): void {
    this.ca = Buffer.from(id.caPem);
    this.identity = { certificate: Buffer.from(id.certPem), privateKey: Buffer.from(id.keyPem) };
    for (const l of this.caListeners) l({ caCertificate: this.ca });
    for (const l of this.idListeners) l(this.identity);
  }

  addCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.add(l);
    // Asynchronously, like grpc-js's own providers (it may not be listening yet).
    const ca = this.ca;
    if (ca) queueMicrotask(() => l({ caCertificate: ca }));
  }
  removeCaCertificateListener(l: grpc.experimental.CaCertificateUpdateListener): void {
    this.caListeners.delete(l);
  }
  addIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.idListeners.add(l);
    const id = this.identity;
    if (id) queueMicrotask(() => l(id));
  }
  removeIdentityCertificateListener(l: grpc.experimental.IdentityCertificateUpdateListener): void {
    this.idListeners.delete(l);
  }
}

/** Obtains, stores, serves and renews the agent's certificate. */
export class AgentIdentity {
  /** What HubConnection dials with once ready(). */
  readonly provider = new MutableCertificateProvider();
  private readonly store: IdentityStore;
  private current: StoredIdentity | undefined;
  /** When the current certificate was obtained or loaded (its notBefore is back-dated for clock skew). */
  private currentSince = 0;
  /** Which of the hub addresses the next request goes to. */
  private nextHub = 0;
  private readonly renewedListeners: Array<() => void> = [];
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly stopping = new AbortController();

  constructor(private readonly opts: AgentIdentityOptions) {
    this.store = new IdentityStore(opts.kube, opts.namespace);
  }

  /** mTLS channel credentials backed by the provider (new certificates apply to new connections). */
  channelCredentials(): grpc.ChannelCredentials {
    return grpc.experimental.createCertificateProviderChannelCredentials(
      this.provider,
      this.provider,
    );
  }

  /** The current identity (after ready()). */
  get identity(): StoredIdentity | undefined {
    return this.current;
  }

  /** Loads or obtains the identity, retrying with backoff until it succeeds or stop(); then schedules renewal. */
  async ready(): Promise<StoredIdentity | undefined> {
    const backoff = new Backoff({
      initialMs: this.opts.retryInitialMs ?? 1_000,
      maxMs: this.opts.retryMaxMs ?? 30_000,
    });
    while (!this.stopping.signal.aborted) {
      try {
        const id = await this.loadOrRegister();
        this.use(id);
        return id;
      } catch (err) {
        // A refused token will not start working by itself, but the operator may fix the Secret: keep trying, slowly.
        const delayMs = backoff.next();
        this.opts.logger.warn(
          { [LogFields.err]: errorMessage(err), delayMs },
          'cannot obtain the cluster identity; retrying',
        );
        await sleep(delayMs, this.stopping.signal);
      }
    }
    return undefined;
  }

  private async loadOrRegister(): Promise<StoredIdentity> {
    const stored = await this.store.load(this.stopping.signal);
    if (stored) {
      const cert = describeCert(stored.certPem);
      if (cert.cn === this.opts.cluster && cert.notAfter > Date.now() + 60_000) {
        this.opts.logger.info(
          { notAfter: new Date(cert.notAfter).toISOString() },
          'using the stored cluster identity',
        );
        return stored;
      }
      this.opts.logger.warn(
        { cn: cert.cn, notAfter: new Date(cert.notAfter).toISOString() },
        'stored identity is expired or for another cluster; registering again',
      );
    }
    const boot = await this.store.bootstrap(this.stopping.signal);
    const token = this.opts.bootstrapToken ?? boot?.token;
    const caPem = this.opts.caPem ?? boot?.caPem ?? stored?.caPem;
    if (!token)
      throw new ConfigError(
        'bootstrap-token-file',
        `no identity stored and no bootstrap token (give --bootstrap-token-file or create Secret ${this.opts.namespace}/flotilla-bootstrap)`,
      );
    if (!caPem)
      throw new ConfigError(
        'ca-file',
        'the hub CA is needed to register (give --ca-file or ca.crt in the bootstrap Secret)',
      );
    const keyPem = generatePrivateKey();
    const nats = this.opts.natsKey?.() ?? { seed: '', publicKey: '' };
    const csrPem = await createCsr(keyPem, this.opts.cluster);
    const client = this.client(grpc.credentials.createSsl(Buffer.from(caPem)));
    try {
      const creds = await call<Credentials__Output>((cb) =>
        client.Register(
          { cluster: this.opts.cluster, token, csrPem, natsPublicKey: nats.publicKey },
          cb,
        ),
      );
      const id = {
        keyPem,
        certPem: creds.certificatePem,
        caPem: creds.caPem || caPem,
        natsSeed: nats.seed,
        natsJwt: creds.natsJwt,
      };
      await this.store.save(id, this.stopping.signal);
      this.opts.logger.info(
        {
          [LogFields.cluster]: this.opts.cluster,
          notAfter: new Date(Number(creds.notAfterMs)).toISOString(),
        },
        'registered with the hub; identity stored',
      );
      return id;
    } finally {
      client.close();
    }
  }

  private client(creds: grpc.ChannelCredentials): IdentityClient {
    const { Identity } = loadFlotillaProto();
    // Several hubs: each request goes to the next one, so a retry reaches another replica.
    const addresses = hubAddresses(this.opts.hubAddress);
    const address = addresses[this.nextHub++ % addresses.length] as string;
    return new Identity(address, creds) as unknown as IdentityClient;
  }

  /** Called after every renewal (the connection then re-dials with the new certificate when its stream next ends). */
  onRenewed(listener: () => void): void {
    this.renewedListeners.push(listener);
  }

  private use(id: StoredIdentity): void {
    this.current = id;
    this.currentSince = Date.now();
    this.provider.update(id);
    this.scheduleRenewal();
  }

  private scheduleRenewal(): void {
    clearTimeout(this.renewTimer);
    if (!this.current || this.stopping.signal.aborted) return;
    const { notBefore, notAfter } = describeCert(this.current.certPem);
    const since = Math.max(notBefore, Math.min(this.currentSince, notAfter));
    const at = since + (notAfter - since) * RENEW_AT_FRACTION;
    // setTimeout caps at ~24.8 days; a long-lived certificate is simply re-checked then.
    const delayMs = Math.min(Math.max(at - Date.now(), 0), 2 ** 31 - 1);
    this.renewTimer = setTimeout(
      () => void this.renewNow().catch((err: unknown) => this.renewFailed(err)),
      delayMs,
    );
    this.renewTimer.unref();
  }

  private renewFailed(err: unknown): void {
    const left = this.current ? describeCert(this.current.certPem).notAfter - Date.now() : 0;
    const retryMs = renewRetryDelayMs(left);
    this.opts.logger.warn(
      { [LogFields.err]: errorMessage(err), retryMs },
      `certificate renewal failed; retrying in ${Math.round(retryMs / 1000)} s`,
    );
    this.renewTimer = setTimeout(
      () => void this.renewNow().catch((e: unknown) => this.renewFailed(e)),
      retryMs,
    );
    this.renewTimer.unref();
  }

  /** Renews the certificate now (mTLS with the current one), stores it and hands it to new connections. */
  async renewNow(): Promise<StoredIdentity> {
    const cur = this.current;
    if (!cur) throw new UnavailableError('cluster identity (not obtained yet)');
    const keyPem = generatePrivateKey();
    const csrPem = await createCsr(keyPem, this.opts.cluster);
    const client = this.client(
      grpc.credentials.createSsl(
        Buffer.from(cur.caPem),
        Buffer.from(cur.keyPem),
        Buffer.from(cur.certPem),
      ),
    );
    try {
      const nats = this.opts.natsKey?.() ?? { seed: cur.natsSeed, publicKey: '' };
      const creds = await call<Credentials__Output>((cb) =>
        client.Renew({ csrPem, natsPublicKey: nats.publicKey }, cb),
      );
      const id = {
        keyPem,
        certPem: creds.certificatePem,
        caPem: creds.caPem || cur.caPem,
        natsSeed: nats.seed,
        natsJwt: creds.natsJwt || cur.natsJwt,
      };
      await this.store.save(id, this.stopping.signal);
      this.use(id);
      this.opts.logger.info(
        { notAfter: new Date(Number(creds.notAfterMs)).toISOString() },
        'certificate renewed',
      );
      for (const l of this.renewedListeners) l();
      return id;
    } finally {
      client.close();
    }
  }

  /** Stops retrying and renewing. */
  stop(): void {
    this.stopping.abort();
    clearTimeout(this.renewTimer);
  }
}

function call<T>(fn: (cb: (err: grpc.ServiceError | null, res?: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    fn((err, res) => {
      if (err)
        reject(new Error(`${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`));
      else resolve(res as T);
    });
  });
}
