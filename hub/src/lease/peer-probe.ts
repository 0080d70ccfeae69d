// Asks the other hub replicas, over HTTP and not through NATS, whether one of them reaches
// NATS: a replica cut from NATS sends its agents away only when another can serve them
// (nats-partition.ts). A peer can serve when its /readyz is 200 and does not name `nats`
// among what is degraded. Every address a peer name resolves to is asked (a headless
// Service lists every ready pod), this replica's own included: it names `nats` while cut,
// so it never counts.
import { lookup } from 'node:dns/promises';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import type { Logger } from '@flotilla/common';
import { durations, errorMessage } from '@flotilla/common';
import { HUB_ORG } from '../identity/pki.js';

/** The most of a peer's /readyz body read (16 KiB). */
const MAX_BODY_BYTES = 16_384;

/** Options of PeerProbe. */
export interface PeerProbeOptions {
  /** "host:port" HTTP addresses of the replicas (hub.yaml peers). */
  peers: string[];
  /**
   * The CA the replicas' serving certificates are signed by (HTTPS); undefined: plain HTTP
   * (an insecure hub). Peers are dialled by address, so the certificate is checked for
   * this CA and the hub's role (O=flotilla-hub), not for a host name.
   */
  caPem: () => string | undefined;
  logger: Logger;
  /** Time allowed to each peer (default durations.peerProbeTimeout, 2 s). */
  timeoutMs?: number;
  /** Resolves a host to its addresses (default: the system resolver, every address). */
  resolve?: (host: string) => Promise<string[]>;
}

/** What one address answered. */
export interface PeerAnswer {
  address: string;
  /** True: ready and reaching NATS. */
  serves: boolean;
  /** Why not, when it does not. */
  why?: string;
}

async function systemResolve(host: string): Promise<string[]> {
  return (await lookup(host, { all: true })).map((a) => a.address);
}

function hostPort(peer: string): { host: string; port: number } {
  const i = peer.lastIndexOf(':');
  return { host: peer.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(peer.slice(i + 1)) };
}

/** Asks the replicas whether one of them reaches NATS; see the file comment. */
export class PeerProbe {
  private readonly resolve: (host: string) => Promise<string[]>;
  private readonly timeoutMs: number;

  constructor(private readonly opts: PeerProbeOptions) {
    this.resolve = opts.resolve ?? systemResolve;
    this.timeoutMs = opts.timeoutMs ?? durations.peerProbeTimeout;
  }

  /** How many peer entries are configured. */
  get configured(): number {
    return this.opts.peers.length;
  }

  /** Every address's answer, asked at once. */
  async ask(): Promise<PeerAnswer[]> {
    const targets = (
      await Promise.all(
        this.opts.peers.map(async (peer) => {
          const { host, port } = hostPort(peer);
          try {
            return (await this.resolve(host)).map((ip) => ({ ip, port }));
          } catch (err) {
            this.opts.logger.debug({ peer, err: errorMessage(err) }, 'peer name not resolved');
            return [];
          }
        }),
      )
    ).flat();
    return Promise.all(targets.map(({ ip, port }) => this.askOne(ip, port)));
  }

  /** The address of a replica that reaches NATS; undefined when none does (or none answers). */
  async servingPeer(): Promise<string | undefined> {
    const answers = await this.ask();
    const serving = answers.find((a) => a.serves);
    if (!serving)
      this.opts.logger.info(
        { asked: answers.map((a) => `${a.address} ${a.why ?? ''}`.trim()) },
        'no other hub replica reaches NATS',
      );
    return serving?.address;
  }

  private async askOne(ip: string, port: number): Promise<PeerAnswer> {
    const address = ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
    try {
      const { status, body } = await this.get(ip, port);
      const r = JSON.parse(body) as { ready?: unknown; degraded?: unknown };
      if (status !== 200 || r.ready !== true) return { address, serves: false, why: 'not ready' };
      if (!Array.isArray(r.degraded) || r.degraded.includes('nats'))
        return { address, serves: false, why: 'NATS unreachable there too' };
      return { address, serves: true };
    } catch (err) {
      return { address, serves: false, why: errorMessage(err) };
    }
  }

  private get(host: string, port: number): Promise<{ status: number; body: string }> {
    const caPem = this.opts.caPem();
    return new Promise((resolve, reject) => {
      const done = (res: IncomingMessage): void => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            res.destroy();
            reject(new Error(`answer over ${MAX_BODY_BYTES} bytes`));
          } else chunks.push(c);
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      };
      const common = {
        host,
        port,
        path: '/readyz',
        method: 'GET',
        timeout: this.timeoutMs,
        signal: AbortSignal.timeout(this.timeoutMs),
      };
      const req = caPem
        ? httpsRequest(
            {
              ...common,
              ca: caPem,
              checkServerIdentity: (_h: string, cert: PeerCertificate) =>
                cert.subject?.O === HUB_ORG
                  ? undefined
                  : new Error(`certificate of ${host} is not a hub's (O=${cert.subject?.O ?? ''})`),
            },
            done,
          )
        : httpRequest(common, done);
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      req.end();
    });
  }
}
