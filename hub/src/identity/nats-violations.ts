// Agents' NATS connections that nats-server closes for breaking their user JWT's limits
// (a message over the payload limit, too many subscriptions) are reported on the
// cluster: such a message never reaches the stream, so without this the hub would never
// know. nats-server announces every closed connection of the FLOTILLA account, with the
// reason and the user JWT, on $SYS.ACCOUNT.<account>.DISCONNECT to the system account;
// the hub listens there with its system user (nats.systemCredsFile). The cluster is the
// name the hub itself put in the JWT (agent-<cluster>), which nats-server has verified.
import { fromSeed } from '@nats-io/nkeys';
import { credsAuthenticator } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { EVENT_LIMITS, LogFields, errorMessage, isDnsLabel } from '@flotilla/common';
import { NatsLink } from '../status/nats-link.js';
import type { NatsTlsOptions } from '../status/nats-link.js';

/** nats-server's close reasons for the limits of an agent's JWT, and what the hub counts them as. */
export const NATS_LIMIT_REASONS: Readonly<Record<string, { what: string; text: string }>> = {
  'Maximum Message Payload Exceeded': {
    what: 'nats.payload',
    text: `a message over ${EVENT_LIMITS.eventBytes} bytes`,
  },
  'Maximum Subscriptions Exceeded': { what: 'nats.subscriptions', text: 'too many subscriptions' },
};

/** A closed connection that broke a limit: whose, and why. */
export interface NatsViolation {
  cluster: string;
  /** What the hub counts it as (flotilla_input_cut_total what=), e.g. "nats.payload". */
  what: string;
  /** The status text: nats-server's reason and what it means. */
  reason: string;
}

/** Options of NatsViolationWatch. */
export interface NatsViolationWatchOptions {
  url: string;
  tls?: NatsTlsOptions;
  /** The system user's creds file content (nats.systemCredsFile). */
  systemCreds: Uint8Array;
  /** FLOTILLA account seed (nats.accountSeedFile): names the account's subject. */
  accountSeed: string;
  logger: Logger;
  onViolation: (v: NatsViolation) => void;
}

/** The cluster of an agent's user JWT (its name "agent-<cluster>"); undefined for other users. */
export function clusterOfAgentJwt(jwt: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8'));
    const name = (payload as { name?: unknown }).name;
    if (typeof name !== 'string' || !name.startsWith('agent-')) return undefined;
    const cluster = name.slice('agent-'.length);
    return isDnsLabel(cluster) ? cluster : undefined;
  } catch {
    return undefined;
  }
}

/** What a DISCONNECT advisory says, when it is an agent breaking a limit. */
export function violationOf(advisory: unknown): NatsViolation | undefined {
  const a = advisory as { reason?: unknown; client?: { jwt?: unknown } };
  const limit = typeof a?.reason === 'string' ? NATS_LIMIT_REASONS[a.reason] : undefined;
  if (!limit || typeof a.client?.jwt !== 'string') return undefined;
  const cluster = clusterOfAgentJwt(a.client.jwt);
  if (!cluster) return undefined;
  return {
    cluster,
    what: limit.what,
    reason: `NATS closed the agent's connection: ${a.reason as string} (${limit.text})`,
  };
}

/** Listens for agents' connections closed over a limit, until stopped. */
export class NatsViolationWatch {
  private readonly link: NatsLink;
  private loop: Promise<void> | undefined;
  private readonly subject: string;

  constructor(private readonly opts: NatsViolationWatchOptions) {
    this.link = new NatsLink({
      url: opts.url,
      name: 'flotilla-hub-system-advisories',
      logger: opts.logger,
      authenticator: credsAuthenticator(opts.systemCreds),
      ...(opts.tls ? { tls: opts.tls } : {}),
    });
    const account = fromSeed(new TextEncoder().encode(opts.accountSeed.trim())).getPublicKey();
    this.subject = `$SYS.ACCOUNT.${account}.DISCONNECT`;
  }

  /** Connects and listens in the background (NATS being down never delays the hub). */
  start(): void {
    this.link.start();
    this.loop ??= this.run();
  }

  private async run(): Promise<void> {
    for (;;) {
      let nc;
      try {
        nc = await this.link.connection();
      } catch {
        return; // stopped
      }
      const sub = nc.subscribe(this.subject);
      for await (const m of sub) {
        let v: NatsViolation | undefined;
        try {
          v = violationOf(m.json());
        } catch (err) {
          this.opts.logger.debug({ [LogFields.err]: errorMessage(err) }, 'unreadable advisory');
        }
        if (!v) continue;
        this.opts.logger.warn(
          { [LogFields.cluster]: v.cluster, what: v.what },
          'NATS closed an agent connection over its limits',
        );
        this.opts.onViolation(v);
      }
      // The subscription ends with its connection; the link makes a new one.
      await nc.closed();
    }
  }

  /** Stops listening and closes the connection. */
  async stop(): Promise<void> {
    await this.link.stop();
    await this.loop;
  }
}
