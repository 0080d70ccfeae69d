// The hub's one gRPC server: AgentStream for agents and FleetService for clients.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { ChannelOptions } from '@grpc/grpc-js';
import { UnavailableError, durations } from '@flotilla/common';
import type { AgentStreamHandlers, FleetServiceHandlers } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';

/** HTTP/2 streams allowed per connection; agents use one each, a proxy may multiplex many. */
export const MAX_CONCURRENT_STREAMS = 10_000;
/** Shortest ping interval the server accepts from clients (5 s, below the agents' keepalive). */
export const MIN_CLIENT_PING_INTERVAL_MS = 5_000;

/** Server options: keepalive on (only it detects a dead peer on a quiet stream). */
export const GRPC_SERVER_OPTIONS: ChannelOptions = {
  'grpc.keepalive_time_ms': durations.grpcKeepaliveTime,
  'grpc.keepalive_timeout_ms': durations.grpcKeepaliveTimeout,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': MIN_CLIENT_PING_INTERVAL_MS,
  'grpc.max_concurrent_streams': MAX_CONCURRENT_STREAMS,
};

/** Services served by the hub's gRPC server. */
export interface GrpcServices {
  agentStream: AgentStreamHandlers;
  fleet: FleetServiceHandlers;
}

/** A started gRPC server and the port it is bound to (useful when listening on port 0). */
export interface RunningGrpcServer {
  server: Server;
  port: number;
  /** Graceful shutdown, forced after graceMs. */
  stop(graceMs: number): Promise<void>;
}

/** Binds the gRPC server (insecure for now; mTLS comes with per-cluster identities). */
export async function startGrpcServer(address: string, services: GrpcServices): Promise<RunningGrpcServer> {
  const proto = loadFlotillaProto();
  const server = new Server(GRPC_SERVER_OPTIONS);
  server.addService(proto.AgentStream.service, services.agentStream);
  server.addService(proto.FleetService.service, services.fleet);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, p) => {
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
