// The hub's one gRPC server: AgentStream for agents and FleetService for clients.
import { Server, ServerCredentials, experimental } from '@grpc/grpc-js';
import type { ChannelOptions } from '@grpc/grpc-js';
import { UnavailableError, durations } from '@flotilla/common';
import type { AgentStreamHandlers, FleetServiceHandlers, IdentityHandlers } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';

/** HTTP/2 streams allowed per connection; agents use one each, a proxy may multiplex many. */
export const MAX_CONCURRENT_STREAMS = 10_000;
/** Shortest ping interval the server accepts from clients (5 s, below the agents' keepalive). */
export const MIN_CLIENT_PING_INTERVAL_MS = 5_000;

/**
 * Largest message the hub accepts from a client (64 KiB; grpc-js's default is 4 MiB).
 * Agents and clients send only small messages (hello, ack, heartbeat, queries, a CSR):
 * a bigger one is refused at the wire, before it is parsed or kept.
 */
export const MAX_RECEIVE_MESSAGE_BYTES = 64 * 1024;

/** Server options: keepalive on (only it detects a dead peer on a quiet stream); small inbound messages. */
export const GRPC_SERVER_OPTIONS: ChannelOptions = {
  'grpc.max_receive_message_length': MAX_RECEIVE_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': durations.grpcKeepaliveTime,
  'grpc.keepalive_timeout_ms': durations.grpcKeepaliveTimeout,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': MIN_CLIENT_PING_INTERVAL_MS,
  'grpc.max_concurrent_streams': MAX_CONCURRENT_STREAMS,
};

/** Services served by the hub's gRPC server. */
export interface GrpcServices {
  agentStream: AgentStreamHandlers;
  /** Calls left out answer UNIMPLEMENTED (tests serve only what they use). */
  fleet: Partial<FleetServiceHandlers>;
  /** Registration and cluster identities; absent in --insecure mode. */
  identity?: IdentityHandlers;
}

/** TLS material of the gRPC server (PEM). Client certificates are requested, not required: Register has none. */
export interface GrpcTls {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/** A certificate provider that always answers with fixed material. */
function fixedProvider(update: {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}): experimental.CertificateProvider {
  // Listeners are called asynchronously, as grpc-js's own providers do: it registers its
  // watcher only after adding the listener, so a synchronous answer would be lost.
  return {
    addCaCertificateListener: (l) =>
      queueMicrotask(() => l(update.ca ? { caCertificate: update.ca } : null)),
    removeCaCertificateListener: () => undefined,
    addIdentityCertificateListener: (l) =>
      queueMicrotask(() =>
        l(update.cert && update.key ? { certificate: update.cert, privateKey: update.key } : null),
      ),
    removeIdentityCertificateListener: () => undefined,
  };
}

/** Server credentials: TLS with an optional client certificate verified against caPem. */
export function grpcServerCredentials(tls: GrpcTls | undefined): ServerCredentials {
  if (!tls) return ServerCredentials.createInsecure();
  // createSsl would reject clients without a certificate at the handshake; the
  // provider-based credentials request one and let the call decide (see identity/).
  // One provider for both roles: grpc-js 1.14 passes the two providers to its constructor
  // in swapped order, so the same (complete) provider in both places is what works.
  const provider = fixedProvider({
    ca: Buffer.from(tls.caPem),
    cert: Buffer.from(tls.certPem),
    key: Buffer.from(tls.keyPem),
  });
  return experimental.createCertificateProviderServerCredentials(provider, provider, false);
}

/** A started gRPC server and the port it is bound to (useful when listening on port 0). */
export interface RunningGrpcServer {
  server: Server;
  port: number;
  /** Graceful shutdown, forced after graceMs. */
  stop(graceMs: number): Promise<void>;
}

/** Binds the gRPC server: TLS (mTLS for agents) when tls is given, plaintext otherwise (--insecure). */
export async function startGrpcServer(
  address: string,
  services: GrpcServices,
  tls?: GrpcTls,
): Promise<RunningGrpcServer> {
  const proto = loadFlotillaProto();
  const server = new Server(GRPC_SERVER_OPTIONS);
  server.addService(proto.AgentStream.service, services.agentStream);
  server.addService(proto.FleetService.service, services.fleet as FleetServiceHandlers);
  if (services.identity) server.addService(proto.Identity.service, services.identity);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, grpcServerCredentials(tls), (err, p) => {
      if (err) reject(new UnavailableError(`gRPC listen address ${address}`, { cause: err }));
      else resolve(p);
    });
  });
  return {
    server,
    port,
    stop: (graceMs) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
