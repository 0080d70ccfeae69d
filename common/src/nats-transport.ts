// How hub and agent reach NATS: over TLS, or in plaintext only where nobody can listen.
// Events carry what runs where, and the connection carries the credentials, so a NATS
// server that is not on this machine is reached over TLS unless the operator says
// otherwise, by name. nats.js picks TLS only when its `tls` option is set (the URL's
// scheme is ignored), so the choice is made here, once, at start.
import { isIP } from 'node:net';
import { ConfigError } from './errors.js';

/** How a client connects to its NATS servers. */
export interface NatsTransport {
  /** True: TLS is required and the server certificate verified (against caFile, else the system roots). */
  tls: boolean;
  /** The servers, as given. */
  servers: string[];
}

/** Where an option of NatsTransport is set: its name as the user writes it (a flag or a config field). */
export interface NatsTransportFields {
  /** The servers' field, e.g. "nats" or "nats.url". */
  url: string;
  /** The CA field, e.g. "nats-ca-file" or "nats.caFile". */
  caFile: string;
  /** The opt-in for plaintext, e.g. "--nats-allow-plaintext" or "nats.allowPlaintext: true". */
  allowPlaintext: string;
  /** The config file, for the error (hub.yaml); none for flags. */
  file?: string;
}

/** True for 127.0.0.0/8, ::1 and localhost: traffic that never leaves the machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h);
  return false;
}

// "tls://h:p", "nats://h:p", "h:p" → scheme and host.
function split(server: string): { scheme: string; host: string } {
  const m = /^([a-z]+):\/\/(.*)$/i.exec(server.trim());
  const scheme = (m?.[1] ?? 'nats').toLowerCase();
  const rest = (m?.[2] ?? server.trim()).replace(/^[^@]*@/, '').replace(/\/.*$/, '');
  const host = rest.startsWith('[') ? rest.slice(0, rest.indexOf(']') + 1) : rest.split(':')[0];
  return { scheme, host: host ?? '' };
}

/**
 * Decides the transport for servers (comma separated): TLS when a server is given as
 * tls:// (or wss://) or a CA file is set; otherwise plaintext, which is refused
 * (ConfigError naming the options) for any server that is not loopback unless
 * allowPlaintext.
 */
export function natsTransport(
  servers: string,
  opts: { caFile?: string | undefined; allowPlaintext?: boolean },
  fields: NatsTransportFields,
): NatsTransport {
  const list = servers
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const parts = list.map(split);
  const tls =
    opts.caFile !== undefined || parts.some((p) => p.scheme === 'tls' || p.scheme === 'wss');
  if (!tls && !opts.allowPlaintext) {
    const remote = list.find((_, i) => !isLoopbackHost(parts[i]?.host ?? ''));
    if (remote !== undefined) {
      const host = split(remote).host;
      throw new ConfigError(
        fields.url,
        `"${remote}" is plaintext to ${host}, which is not a loopback address: events and credentials would cross the network unencrypted. Use tls://${remote.replace(/^[a-z]+:\/\//i, '')} (with ${fields.caFile} for a private CA), or set ${fields.allowPlaintext} to accept plaintext`,
        fields.file ? { file: fields.file } : {},
      );
    }
  }
  return { tls, servers: list };
}
