// The hub's NATS connection. NATS being down never stops the hub: the first connect is
// retried with backoff forever, and nats.js reconnects by itself once connected. Users
// of the link wait for a connection with `connection()`.
import { connect } from '@nats-io/transport-node';
import type { Authenticator, NatsConnection } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { Backoff, errorMessage, sleep } from '@flotilla/common';

/** Options of NatsLink. */
export interface NatsLinkOptions {
  /** One server URL or several, comma separated (the client fails over between them). */
  url: string;
  logger: Logger;
  /** Connection name shown by the server (default "flotilla-hub"). */
  name?: string;
  /** The hub's own NATS credentials (decentralized auth); undefined connects without. */
  authenticator?: Authenticator;
  /** TLS required, the server's certificate verified against caFile (else the system roots); undefined: plaintext unless the server asks for TLS. */
  tls?: NatsTlsOptions;
}

/** TLS of a NATS connection: the CA file the server's certificate must chain to (default: system roots). */
export interface NatsTlsOptions {
  caFile?: string | undefined;
}

/** The `tls` option of NatsLink for the hub's nats config: set when TLS is required. */
export function natsTlsOf(nats: { tls: boolean; caFile?: string | undefined }): {
  tls?: NatsTlsOptions;
} {
  return nats.tls ? { tls: { caFile: nats.caFile } } : {};
}

/** nats.js connect options for tls (read at every connect, so a replaced CA file is picked up). */
export function natsTlsConnectOptions(tls: NatsTlsOptions | undefined): {
  tls?: { caFile?: string };
} {
  if (!tls) return {};
  return { tls: tls.caFile ? { caFile: tls.caFile } : {} };
}

/** Keeps one NATS connection open until stopped. */
export class NatsLink {
  private nc: NatsConnection | undefined;
  private up = false;
  private downAt: Date | undefined;
  private readonly abort = new AbortController();
  private readonly waiters = new Set<(nc: NatsConnection) => void>();
  private loop: Promise<void> | undefined;

  constructor(private readonly opts: NatsLinkOptions) {}

  /** True while connected (not during a reconnect). */
  get connected(): boolean {
    return this.up;
  }

  /** Since when the link has not been connected (from start() until connected); undefined while connected. */
  get downSince(): Date | undefined {
    return this.up ? undefined : this.downAt;
  }

  private setUp(up: boolean): void {
    this.up = up;
    if (up) this.downAt = undefined;
    else this.downAt ??= new Date();
  }

  /** Starts connecting in the background. */
  start(): void {
    this.downAt ??= new Date();
    this.loop ??= this.run();
  }

  /** Resolves with the connection once there is one; rejects if the link stops first. */
  connection(): Promise<NatsConnection> {
    if (this.nc && this.up) return Promise.resolve(this.nc);
    return new Promise((resolve, reject) => {
      if (this.abort.signal.aborted) return reject(new Error('NATS link stopped'));
      this.waiters.add(resolve);
      this.abort.signal.addEventListener('abort', () => reject(new Error('NATS link stopped')), {
        once: true,
      });
    });
  }

  private async run(): Promise<void> {
    const backoff = new Backoff({ initialMs: 500, maxMs: 15_000 });
    const log = this.opts.logger;
    while (!this.abort.signal.aborted) {
      let nc: NatsConnection;
      try {
        nc = await connect({
          servers: this.opts.url.split(',').map((s) => s.trim()),
          name: this.opts.name ?? 'flotilla-hub',
          maxReconnectAttempts: -1,
          reconnectTimeWait: 1_000,
          // No stack trace captured per request (each KV put, each JetStream publish):
          // 6 % of the hub's busy time during a fan-out. Errors keep their messages.
          noAsyncTraces: true,
          ...natsTlsConnectOptions(this.opts.tls),
          ...(this.opts.authenticator ? { authenticator: this.opts.authenticator } : {}),
        });
      } catch (err) {
        const delay = backoff.next();
        log.warn(
          { url: this.opts.url, err: errorMessage(err), retryInMs: delay },
          'NATS unavailable, retrying',
        );
        await sleep(delay, this.abort.signal);
        continue;
      }
      backoff.reset();
      this.nc = nc;
      this.setUp(true);
      log.info({ url: this.opts.url }, 'NATS connected');
      for (const w of this.waiters) w(nc);
      this.waiters.clear();
      void this.watch(nc);
      const closed = await nc.closed();
      this.setUp(false);
      this.nc = undefined;
      if (!this.abort.signal.aborted)
        log.warn(
          { err: closed ? errorMessage(closed) : undefined },
          'NATS connection closed, reconnecting',
        );
    }
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        this.setUp(false);
        this.opts.logger.warn({ server: s.server }, 'NATS disconnected');
      } else if (s.type === 'reconnect') {
        this.setUp(true);
        this.opts.logger.info({ server: s.server }, 'NATS reconnected');
      }
    }
  }

  /** Drains and closes the connection; stops retrying. */
  async stop(): Promise<void> {
    this.abort.abort();
    const nc = this.nc;
    if (nc && !nc.isClosed()) {
      try {
        await nc.drain();
      } catch {
        // Closing anyway: a drain fails only when the connection is already gone.
        await nc.close();
      }
    }
    await this.loop;
  }
}
