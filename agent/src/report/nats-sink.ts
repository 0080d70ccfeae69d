// The NATS JetStream EventSink. The first connection is retried in the background with
// backoff (abortable, so shutdown never hangs on it); once connected the client
// reconnects by itself forever. An agent thus starts and applies while NATS is down.
import { JetStreamApiError, jetstream } from '@nats-io/jetstream';
import { InvalidArgumentError, connect } from '@nats-io/transport-node';
import type { Authenticator, NatsConnection } from '@nats-io/transport-node';
import {
  Backoff,
  LogFields,
  TooLargeError,
  UnavailableError,
  errorMessage,
  sleep,
} from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import type { EventSink } from './publisher.js';

/** Options of natsSink. */
export interface NatsSinkOptions {
  /** nats:// or tls:// URL(s), comma separated. */
  servers: string;
  /**
   * TLS required, the server's certificate verified against `caPem` (else the system
   * roots). Without it the client speaks plaintext unless the server asks for TLS.
   */
  tls?: { caPem?: string };
  /** Name shown in the server's connection list. */
  name: string;
  logger: Logger;
  /** Credentials (the cluster's NATS user JWT); called at every (re)connect, so a renewed JWT is used. */
  authenticator?: Authenticator;
  /** Reply subject prefix; agents use their own (_INBOX_<cluster>) so their permissions can name it. */
  inboxPrefix?: string;
  /** Time to wait for a JetStream ack (default 5 000 ms). */
  publishTimeoutMs?: number;
  /** First-connect retry delays (default 500 .. 30 000 ms). */
  retryInitialMs?: number;
  retryMaxMs?: number;
}

/** JetStream's error code for a message over the stream's max_msg_size. */
const JS_MESSAGE_TOO_LARGE = 10054;

/** Connects to NATS in the background and publishes to JetStream with de-duplicating message ids. */
export function natsSink(opts: NatsSinkOptions): EventSink {
  let nc: NatsConnection | undefined;
  const stopping = new AbortController();
  const servers = opts.servers.split(',').map((s) => s.trim());

  const watchStatus = async (conn: NatsConnection): Promise<void> => {
    for await (const s of conn.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect')
        opts.logger.info({ nats: s.server, status: s.type }, 'NATS connection status');
    }
  };
  const dial = async (): Promise<void> => {
    const backoff = new Backoff({
      initialMs: opts.retryInitialMs ?? 500,
      maxMs: opts.retryMaxMs ?? 30_000,
    });
    while (!stopping.signal.aborted) {
      try {
        const conn = await connect({
          servers,
          name: opts.name,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 2_000,
          ...(opts.tls ? { tls: opts.tls.caPem ? { ca: opts.tls.caPem } : {} } : {}),
          ...(opts.authenticator ? { authenticator: opts.authenticator } : {}),
          ...(opts.inboxPrefix ? { inboxPrefix: opts.inboxPrefix } : {}),
        });
        if (stopping.signal.aborted) return void (await conn.close());
        nc = conn;
        opts.logger.info({ nats: conn.getServer() }, 'connected to NATS');
        void watchStatus(conn);
        return;
      } catch (err) {
        const delayMs = backoff.next();
        opts.logger.warn(
          { [LogFields.err]: errorMessage(err), delayMs, nats: opts.servers },
          'cannot connect to NATS; retrying',
        );
        await sleep(delayMs, stopping.signal);
      }
    }
  };
  const dialing = dial();

  return {
    async publish(subject, data, msgID) {
      if (!nc) throw new UnavailableError('NATS (not connected yet)');
      try {
        await jetstream(nc).publish(subject, data, {
          msgID,
          timeout: opts.publishTimeoutMs ?? 5_000,
        });
      } catch (err) {
        // Over the user's payload limit (refused by the client before sending) or the
        // stream's max_msg_size: no retry can ever store it.
        if (
          (err instanceof InvalidArgumentError && /max_payload/.test(err.message)) ||
          (err instanceof JetStreamApiError && err.code === JS_MESSAGE_TOO_LARGE)
        )
          throw new TooLargeError('event', data.length, nc.info?.max_payload ?? 0);
        throw err;
      }
    },
    async close() {
      stopping.abort();
      await dialing;
      if (nc && !nc.isClosed()) await nc.drain();
    },
  };
}
