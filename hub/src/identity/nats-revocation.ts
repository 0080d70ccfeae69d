// NATS revocation: nats-server runs a `full` account resolver, so the hub can push a new
// FLOTILLA account JWT at run time ($SYS.REQ.CLAIMS.UPDATE, as a system-account user).
// The JWT lists the user keys of revoked clusters; the server closes their connections
// and refuses them from then on, and keeps the JWT in its resolver directory across
// restarts. The hub re-pushes the full list at every start, and retries a failed push
// until it lands, so a revocation made while NATS was down still arrives.
import { fromSeed } from '@nats-io/nkeys';
import { connect, credsAuthenticator } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { LogFields, durations, errorMessage } from '@flotilla/common';
import { flotillaAccountJwt } from './nats-jwt.js';
import { natsTlsConnectOptions } from '../status/nats-link.js';
import type { NatsTlsOptions } from '../status/nats-link.js';

/** The subject a `full` resolver takes account JWT updates on. */
export const CLAIMS_UPDATE_SUBJECT = '$SYS.REQ.CLAIMS.UPDATE';

/** Sends one claims update and returns the server's reply text; injectable for tests. */
export type ClaimsSender = (jwt: string) => Promise<string>;

/** Options of NatsRevocationPublisher. */
export interface NatsRevocationOptions {
  /** nats-server URL (the hub's nats.url). */
  url: string;
  /** TLS as the hub's own connection uses it (nats.caFile); undefined: none required. */
  tls?: NatsTlsOptions;
  /** The system-account user's creds file content (nats.systemCredsFile). */
  systemCreds: Uint8Array;
  /** Operator signing key seed (nats.operatorSigningKeyFile). */
  operatorSigningSeed: string;
  /** FLOTILLA account seed (nats.accountSeedFile): only its public key is used here. */
  accountSeed: string;
  logger: Logger;
  /** Delay between attempts of a failed push (default durations.natsClaimsRetry). */
  retryMs?: number;
  /** Replaces the real NATS request (unit tests). */
  send?: ClaimsSender;
}

/** Pushes the FLOTILLA account JWT with the current revocations; retries until it lands. */
export class NatsRevocationPublisher {
  private readonly send: ClaimsSender;
  private readonly accountPublicKey: string;
  private latest: (() => Record<string, number>) | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private chain: Promise<boolean> = Promise.resolve(true);
  private stopped = false;

  constructor(private readonly opts: NatsRevocationOptions) {
    this.accountPublicKey = fromSeed(
      new TextEncoder().encode(opts.accountSeed.trim()),
    ).getPublicKey();
    this.send = opts.send ?? ((jwt) => this.request(jwt));
  }

  /** Re-pushes the revocations at start, in the background: NATS being down must not delay the hub. */
  start(revocations: () => Record<string, number>): void {
    this.latest = revocations;
    void this.push();
  }

  /** Pushes the current revocations now; true when the server took them (else a retry is scheduled). */
  push(): Promise<boolean> {
    // Serialized: a newer list must never be overtaken by an older one in flight.
    this.chain = this.chain.then(() => this.attempt());
    return this.chain;
  }

  /** Stops retrying. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }

  private async attempt(): Promise<boolean> {
    if (this.stopped || !this.latest) return false;
    clearTimeout(this.retryTimer);
    const revocations = this.latest();
    const signer = fromSeed(new TextEncoder().encode(this.opts.operatorSigningSeed.trim()));
    try {
      const reply = await this.send(flotillaAccountJwt(signer, this.accountPublicKey, revocations));
      const parsed = JSON.parse(reply) as { error?: { description?: string; code?: number } };
      if (parsed.error)
        throw new Error(
          `nats-server refused the account update: ${parsed.error.description ?? JSON.stringify(parsed.error)}`,
        );
      this.opts.logger.info(
        { revokedUsers: Object.keys(revocations).length },
        'NATS account revocations pushed',
      );
      return true;
    } catch (err) {
      const retryMs = this.opts.retryMs ?? durations.natsClaimsRetry;
      this.opts.logger.error(
        { [LogFields.err]: errorMessage(err), retryInMs: retryMs },
        'NATS revocations not pushed yet; retrying',
      );
      if (!this.stopped) {
        this.retryTimer = setTimeout(() => void this.push(), retryMs);
        this.retryTimer.unref();
      }
      return false;
    }
  }

  // One short connection per push: revocations are rare, and a fresh connection has no
  // reconnect state to manage.
  private async request(jwt: string): Promise<string> {
    const nc = await connect({
      servers: this.opts.url,
      ...natsTlsConnectOptions(this.opts.tls),
      authenticator: credsAuthenticator(this.opts.systemCreds),
      reconnect: false,
      timeout: durations.natsClaimsTimeout,
      name: 'flotilla-hub-system',
    });
    try {
      const msg = await nc.request(CLAIMS_UPDATE_SUBJECT, new TextEncoder().encode(jwt), {
        timeout: durations.natsClaimsTimeout,
      });
      return msg.string();
    } finally {
      await nc.close();
    }
  }
}
