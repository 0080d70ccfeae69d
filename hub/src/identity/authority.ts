// The identity authority: registers clusters, issues single-use bootstrap tokens, trades
// them for certificates, renews and revokes. It decides; service.ts only speaks gRPC.
//
// A certificate is accepted when its CA verified it (TLS did that), its role (O) is
// right, and its serial is in the cluster's list of live serials. Revoking a cluster
// empties that list, so every certificate it ever had stops working at once.
import { X509Certificate, createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@flotilla/common';
import {
  ConfigError,
  LogFields,
  ValidationError,
  errorMessage,
  isDnsLabel,
} from '@flotilla/common';
import { BootstrapTokenError, IdentityRefusedError, RenewalTooSoonError } from './errors.js';
import { ADMIN_ORG, CLUSTER_ORG, CertificateAuthority, HUB_ORG, createCa } from './pki.js';
import type { IssuedCert, KeyPairPem } from './pki.js';
import { ApiTokens } from './api-tokens.js';
import { Admins, BOOTSTRAP_ADMIN } from './admins.js';
import forge from 'node-forge';
import { FileIdentityRecords, UNCHANGED } from './records.js';
import type { IdentityRecords } from './records.js';
import type { ClusterRecord, TokenRecord } from './store.js';

/** Durations of identity material (ms). */
export const IDENTITY_DEFAULTS = {
  /** Bootstrap token lifetime (1 h). */
  tokenTtlMs: 3_600_000,
  /** Cluster certificate lifetime (24 h); agents renew at two thirds. */
  certValidityMs: 86_400_000,
  /** Hub serving and admin certificates (1 year). */
  hubCertValidityMs: 365 * 86_400_000,
  /**
   * Least time between two renewals of one cluster: a quarter of the certificate
   * lifetime, at most 1 min (agents renew at two thirds of it).
   */
  maxRenewIntervalMs: 60_000,
} as const;

/** A verified peer, from the TLS peer certificate. */
export interface PeerIdentity {
  role: 'cluster' | 'admin';
  name: string;
  serial: string;
}

/** The parts of node's PeerCertificate the authority reads. */
export interface PeerCertificateLike {
  subject?: { CN?: string | string[]; O?: string | string[] } | undefined;
  serialNumber?: string;
  /** e.g. "Nov 26 06:35:05 2026 GMT". */
  valid_to?: string;
}

/** Options of IdentityAuthority. */
export interface IdentityAuthorityOptions {
  /** Directory for ca.crt, ca.key, hub and admin certificates (and identity-state.json with the file store). */
  stateDir: string;
  /**
   * Where the records live (default: identity-state.json in stateDir). Hub replicas share
   * a JetStream KV bucket (kv-records.ts); its `adoptCa` refuses a replica with another CA.
   */
  records?: IdentityRecords & { adoptCa?(fingerprint: string): Promise<void> };
  /** Host names and IPs the hub's serving certificate is valid for. */
  hosts: string[];
  logger: Logger;
  tokenTtlMs?: number;
  certValidityMs?: number;
  now?: () => number;
}

const TOKEN_RE = /^flt\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;

/** The SHA-256 digest of a secret (bootstrap and API tokens are stored only as this). */
export function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Loads or creates the CA and the hub's certificates, and owns the identity records. */
export class IdentityAuthority {
  private ca!: CertificateAuthority;
  private readonly records: IdentityRecords & { adoptCa?(fingerprint: string): Promise<void> };
  private serving!: KeyPairPem;
  private tokens!: ApiTokens;
  private people!: Admins;
  private readonly now: () => number;
  private readonly revokeListeners: Array<(cluster: string) => number> = [];
  private natsRevoker: (() => Promise<boolean>) | undefined;

  constructor(private readonly opts: IdentityAuthorityOptions) {
    this.records =
      opts.records ?? new FileIdentityRecords(join(opts.stateDir, 'identity-state.json'));
    this.now = opts.now ?? Date.now;
  }

  /** Loads (or creates on first start) the CA, the serving and admin certificates, and the records. */
  async start(): Promise<void> {
    const dir = this.opts.stateDir;
    await mkdir(dir, { recursive: true, mode: 0o700 });
    this.ca = new CertificateAuthority(await this.loadOrCreate('ca', () => createCa()));
    await this.records.start();
    await this.records.adoptCa?.(new X509Certificate(this.ca.caPem).fingerprint256);
    // The serving certificate is re-issued at every start, so a changed host list takes effect.
    this.serving = this.ca.issueKeyPair(
      'flotilla-hub',
      HUB_ORG,
      IDENTITY_DEFAULTS.hubCertValidityMs,
      { server: true, hosts: this.opts.hosts },
    );
    let created = false;
    const bootstrap = await this.loadOrCreate('admin', () => {
      created = true;
      return this.ca.issueKeyPair(BOOTSTRAP_ADMIN, ADMIN_ORG, IDENTITY_DEFAULTS.hubCertValidityMs);
    });
    this.tokens = new ApiTokens(this.records, this.opts.logger, this.now);
    this.people = new Admins(this.records, this.ca, this.opts.logger, this.now);
    this.records.onRemoteChange((kind, name, before, after) => {
      if (kind !== 'clusters') return;
      const was = before as ClusterRecord | undefined;
      const is = after as ClusterRecord | undefined;
      // Revoked through another hub replica: this replica closes the streams it holds.
      if (is?.revokedAtMs !== undefined && was?.revokedAtMs === undefined) {
        const closed = this.closeStreams(name);
        this.opts.logger.warn(
          { [LogFields.cluster]: name, streamsClosed: closed },
          'cluster revoked on another hub replica',
        );
      }
    });
    const cert = forge.pki.certificateFromPem(bootstrap.certPem);
    await this.people.adoptBootstrap(
      cert.serialNumber,
      cert.validity.notAfter.getTime(),
      created,
      cert.validity.notBefore.getTime(),
    );
    this.opts.logger.info(
      { stateDir: dir, records: this.records.where, clusters: this.list().length },
      'identity authority ready',
    );
  }

  private async loadOrCreate(name: string, create: () => KeyPairPem): Promise<KeyPairPem> {
    const certFile = join(this.opts.stateDir, `${name}.crt`);
    const keyFile = join(this.opts.stateDir, `${name}.key`);
    try {
      return { certPem: await readFile(certFile, 'utf8'), keyPem: await readFile(keyFile, 'utf8') };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const pair = create();
    try {
      await writeFile(keyFile, pair.keyPem, { mode: 0o600 });
      await writeFile(certFile, pair.certPem, { mode: 0o644 });
    } catch (err) {
      // Replicas mount the directory read-only (a Secret): the files are made beforehand.
      throw new ConfigError(
        'identity.stateDir',
        `${certFile} is missing and cannot be created (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}): make the hub's identity with \`flotilla hub init --identity-dir DIR\` and give every replica those files (docs/install.md)`,
        { cause: err },
      );
    }
    this.opts.logger.info({ file: certFile }, `created ${name} certificate`);
    return { certPem: pair.certPem, keyPem: pair.keyPem };
  }

  /** Stops following the records (another replica's changes). */
  async stop(): Promise<void> {
    await this.records.stop();
  }

  private closeStreams(cluster: string): number {
    let closed = 0;
    for (const l of this.revokeListeners) closed += l(cluster);
    return closed;
  }

  /** The CA certificate agents and clients trust. */
  get caPem(): string {
    return this.ca.caPem;
  }

  /** API tokens for reading fleet status (`flotilla token`), kept in the same state file. */
  get apiTokens(): ApiTokens {
    return this.tokens;
  }

  /** Administrators, each a person with short-lived certificates (`flotilla admin`). */
  get admins(): Admins {
    return this.people;
  }

  /** The hub's serving certificate and key. */
  get servingPair(): KeyPairPem {
    return this.serving;
  }

  /** Registers a listener told when a cluster is revoked; it returns how many streams it closed. */
  onRevoke(listener: (cluster: string) => number): void {
    this.revokeListeners.push(listener);
  }

  /** Sets what pushes the NATS revocations; revoke() awaits it (true: the server took them). */
  setNatsRevoker(push: () => Promise<boolean>): void {
    this.natsRevoker = push;
  }

  /** Remembers the NATS user key a JWT was signed for, so a revocation can name it. */
  async recordNatsKey(cluster: string, publicKey: string, expiresAtMs: number): Promise<void> {
    const now = this.now();
    await this.records.update('clusters', cluster, (c) => {
      if (!c) return UNCHANGED;
      c.natsKeys = Object.fromEntries(
        Object.entries(c.natsKeys ?? {}).filter(([, exp]) => exp > now),
      );
      c.natsKeys[publicKey] = expiresAtMs;
      return c;
    });
  }

  /** Revoked NATS user keys → revocation time (s), without those whose JWT expired anyway. */
  natsRevocations(): Record<string, number> {
    const now = this.now();
    return Object.fromEntries(
      Object.entries(this.records.view.natsRevocations)
        .filter(([, r]) => r.expiresAtMs > now)
        .map(([k, r]) => [k, r.revokedAtS]),
    );
  }

  /** Records (or re-admits) a cluster and issues a single-use bootstrap token. */
  async addCluster(
    name: string,
    labels: Record<string, string>,
    ttlMs?: number,
  ): Promise<{ token: string; expiresAtMs: number }> {
    if (!isDnsLabel(name))
      throw new ValidationError(
        `cluster name "${name}" must be a DNS label (lower-case letters, digits, '-')`,
      );
    for (const [k, v] of Object.entries(labels)) {
      if (!/^[A-Za-z0-9]([-A-Za-z0-9_./]{0,251}[A-Za-z0-9])?$/.test(k))
        throw new ValidationError(`label key "${k}" is invalid`);
      if (v.length > 63 || !/^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(v))
        throw new ValidationError(`label value "${v}" of "${k}" is invalid`);
    }
    const now = this.now();
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const expiresAtMs =
      now + (ttlMs && ttlMs > 0 ? ttlMs : (this.opts.tokenTtlMs ?? IDENTITY_DEFAULTS.tokenTtlMs));
    await this.records.update('clusters', name, (existing) =>
      // Re-adding a revoked cluster starts a new identity: no old certificate comes back.
      existing && existing.revokedAtMs === undefined
        ? { ...existing, labels }
        : { name, labels, addedAtMs: now, serials: {} },
    );
    // Expired and used tokens are dropped here, so the records do not grow forever.
    const spent = (t: TokenRecord): boolean => t.expiresAtMs <= now || t.usedAtMs !== undefined;
    await Promise.all(
      Object.values(this.records.view.tokens)
        .filter(spent)
        .map((t) =>
          this.records.update('tokens', t.id, (cur) => (cur && spent(cur) ? undefined : UNCHANGED)),
        ),
    );
    await this.records.update('tokens', id, (cur) => {
      if (cur) throw new Error(`bootstrap token id ${id} exists already`);
      return { id, cluster: name, digest: sha256(secret).toString('hex'), expiresAtMs };
    });
    this.opts.logger.info(
      { [LogFields.cluster]: name, tokenId: id, expiresAt: new Date(expiresAtMs).toISOString() },
      'cluster added; bootstrap token issued',
    );
    return { token: `flt.${id}.${secret}`, expiresAtMs };
  }

  /** Trades a bootstrap token and CSR for a certificate; the token is spent before anything is issued. */
  async register(cluster: string, token: string, csrPem: string): Promise<IssuedCert> {
    const m = TOKEN_RE.exec(token);
    if (!m) throw new BootstrapTokenError('malformed');
    const [id, secret] = [m[1] as string, m[2] as string];
    const check = (record: TokenRecord | undefined): TokenRecord => {
      if (!record || !timingSafeEqual(sha256(secret), Buffer.from(record.digest, 'hex')))
        throw new BootstrapTokenError('unknown');
      if (record.usedAtMs !== undefined) throw new BootstrapTokenError('used');
      if (record.expiresAtMs <= this.now()) throw new BootstrapTokenError('expired');
      if (record.cluster !== cluster) throw new BootstrapTokenError('wrong-cluster');
      return record;
    };
    check(this.records.view.tokens[id]);
    const c = this.records.view.clusters[cluster];
    if (!c || c.revokedAtMs !== undefined) throw new BootstrapTokenError('unknown');
    // Validate the CSR before spending the token, so a broken agent can retry with it.
    const issued = this.ca.issueFromCsr(
      csrPem,
      cluster,
      CLUSTER_ORG,
      this.opts.certValidityMs ?? IDENTITY_DEFAULTS.certValidityMs,
    );
    // Spending is a compare-and-set on the token's record: of two uses at the same moment
    // (two hub replicas), one write wins and the other sees the token used.
    await this.records.update('tokens', id, (record) => {
      const spent = check(record);
      spent.usedAtMs = this.now();
      return spent;
    });
    await this.records.update('clusters', cluster, (cur) => {
      if (!cur || cur.revokedAtMs !== undefined) throw new BootstrapTokenError('unknown');
      this.recordIssued(cur, issued);
      return cur;
    });
    this.opts.logger.info(
      { [LogFields.cluster]: cluster, tokenId: id, serial: issued.serial },
      'cluster registered; certificate issued',
    );
    return issued;
  }

  /** Issues a fresh certificate to a cluster that proved its current one. */
  async renew(peer: PeerIdentity, csrPem: string): Promise<IssuedCert> {
    if (peer.role !== 'cluster')
      throw new IdentityRefusedError('only a cluster certificate can be renewed', true);
    const validity = this.opts.certValidityMs ?? IDENTITY_DEFAULTS.certValidityMs;
    const now = this.now();
    const minInterval = Math.min(IDENTITY_DEFAULTS.maxRenewIntervalMs, validity / 4);
    // The last renewal is in the cluster's record, so the limit holds across hub replicas
    // (an agent hopping between them) and restarts. Checked on the view first (no signing
    // for a refusal), then again inside the compare-and-set, against the newest record.
    const tooSoon = (c: ClusterRecord | undefined): void => {
      if (c?.renewedAtMs === undefined) return;
      // Replicas' clocks differ a little: a renewal "in the future" counts as just now.
      const elapsed = Math.max(0, now - c.renewedAtMs);
      if (elapsed < minInterval && c.renewedAtMs - now < minInterval)
        throw new RenewalTooSoonError(peer.name, minInterval - elapsed);
    };
    tooSoon(this.records.view.clusters[peer.name]);
    const issued = this.ca.issueFromCsr(csrPem, peer.name, CLUSTER_ORG, validity);
    // Superseded certificates are revoked: only the one that asked (an open stream or
    // channel may still use it until it re-dials) and the new one stay live, so a burst of
    // renewals never leaves a trail of valid certificates.
    await this.records.update('clusters', peer.name, (c) => {
      if (!c || c.revokedAtMs !== undefined)
        throw new IdentityRefusedError(`cluster "${peer.name}" has been revoked`);
      tooSoon(c);
      const presented = Object.keys(c.serials).find(
        (s) => s.replace(/^0+/, '') === peer.serial.replace(/^0+/, ''),
      );
      c.serials = presented && c.serials[presented] ? { [presented]: c.serials[presented] } : {};
      this.recordIssued(c, issued);
      c.renewedAtMs = now;
      return c;
    });
    this.opts.logger.info(
      { [LogFields.cluster]: peer.name, serial: issued.serial },
      'certificate renewed',
    );
    return issued;
  }

  private recordIssued(c: ClusterRecord, issued: IssuedCert): void {
    const now = this.now();
    // Expired certificates are refused anyway; dropping them keeps the record small.
    c.serials = Object.fromEntries(
      Object.entries(c.serials).filter(([, notAfter]) => notAfter > now),
    );
    c.serials[issued.serial] = issued.notAfter.getTime();
    c.lastIssuedAtMs = now;
  }

  /** Revokes every certificate and unused token of a cluster and closes its streams. */
  async revoke(name: string): Promise<number> {
    const now = this.now();
    let natsKeys: Record<string, number> = {};
    await this.records.update('clusters', name, (c) => {
      if (!c) throw new ValidationError(`cluster "${name}" is not registered`);
      natsKeys = c.natsKeys ?? {};
      c.revokedAtMs = now;
      c.serials = {};
      c.natsKeys = {};
      return c;
    });
    const { tokens, natsRevocations } = this.records.view;
    await Promise.all([
      ...Object.values(tokens)
        .filter((t) => t.cluster === name)
        .map((t) => this.records.update('tokens', t.id, () => undefined)),
      // Every JWT issued to these keys so far (iat <= now) is revoked; expired entries go.
      ...Object.entries(natsKeys)
        .filter(([, expiresAtMs]) => expiresAtMs > now)
        .map(([key, expiresAtMs]) =>
          this.records.update('natsRevocations', key, () => ({
            revokedAtS: Math.ceil(now / 1000),
            expiresAtMs,
          })),
        ),
      ...Object.entries(natsRevocations)
        .filter(([, r]) => r.expiresAtMs <= now)
        .map(([key]) =>
          this.records.update('natsRevocations', key, (r) =>
            r && r.expiresAtMs <= now ? undefined : UNCHANGED,
          ),
        ),
    ]);
    const closed = this.closeStreams(name);
    const natsRevoked = this.natsRevoker ? await this.natsRevoker() : undefined;
    this.opts.logger.warn(
      { [LogFields.cluster]: name, streamsClosed: closed, natsRevoked },
      'cluster revoked',
    );
    return closed;
  }

  /** Registered clusters. */
  list(): ClusterRecord[] {
    return Object.values(this.records.view.clusters).sort((a, b) => a.name.localeCompare(b.name));
  }

  /** Checks a TLS-verified peer certificate against the records; throws IdentityRefusedError. */
  verifyPeer(cert: PeerCertificateLike | undefined): PeerIdentity {
    const cn = first(cert?.subject?.CN);
    const org = first(cert?.subject?.O);
    const serial = (cert?.serialNumber ?? '').toUpperCase().replace(/^0+/, '');
    if (!cert || !cn || !serial)
      throw new IdentityRefusedError('a client certificate signed by this hub is required');
    if (org === ADMIN_ORG) {
      this.people.verify(cn, serial, cert.valid_to ? Date.parse(cert.valid_to) : undefined);
      return { role: 'admin', name: cn, serial };
    }
    if (org !== CLUSTER_ORG)
      throw new IdentityRefusedError(`certificate role "${org ?? ''}" is not accepted`);
    const c = this.records.view.clusters[cn];
    if (!c) throw new IdentityRefusedError(`cluster "${cn}" is not registered`);
    if (c.revokedAtMs !== undefined)
      throw new IdentityRefusedError(`cluster "${cn}" has been revoked`);
    const notAfter = Object.entries(c.serials).find(([s]) => s.replace(/^0+/, '') === serial)?.[1];
    if (notAfter === undefined)
      throw new IdentityRefusedError(`certificate of cluster "${cn}" has been revoked`);
    // TLS checked the dates at the handshake; a long-lived connection may outlive its certificate.
    const validTo = cert.valid_to ? Date.parse(cert.valid_to) : notAfter;
    if (Math.min(validTo, notAfter) <= this.now())
      throw new IdentityRefusedError(`certificate of cluster "${cn}" has expired`);
    return { role: 'cluster', name: cn, serial };
  }
}
