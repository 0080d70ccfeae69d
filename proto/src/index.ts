// @flotilla/proto: the wire contract between hub, agents and clients.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';
import type { ProtoGrpcType as AgentStreamProto } from './generated/agent_stream.js';
import type { ProtoGrpcType as FleetProto } from './generated/fleet.js';
import type { ProtoGrpcType as IdentityProto } from './generated/identity.js';

export type { AgentMessage, AgentMessage__Output } from './generated/flotilla/v1/AgentMessage.js';
export type { HubMessage, HubMessage__Output } from './generated/flotilla/v1/HubMessage.js';
export type { Hello__Output } from './generated/flotilla/v1/Hello.js';
export type {
  ClusterCapabilities as ClusterCapabilitiesMessage,
  ClusterCapabilities__Output,
} from './generated/flotilla/v1/ClusterCapabilities.js';
export type { Ack, Ack__Output } from './generated/flotilla/v1/Ack.js';
export type { AckResult } from './generated/flotilla/v1/AckResult.js';
export type { DesiredStateChunk__Output } from './generated/flotilla/v1/DesiredStateChunk.js';
export type {
  AgentStreamClient,
  AgentStreamHandlers,
} from './generated/flotilla/v1/AgentStream.js';
export type {
  FleetServiceClient,
  FleetServiceHandlers,
} from './generated/flotilla/v1/FleetService.js';
export type { ClusterStatus as ClusterStatusMessage } from './generated/flotilla/v1/ClusterStatus.js';
export type { IdentityClient, IdentityHandlers } from './generated/flotilla/v1/Identity.js';
export type { Credentials, Credentials__Output } from './generated/flotilla/v1/Credentials.js';
export type { ClusterIdentity__Output } from './generated/flotilla/v1/ClusterIdentity.js';
export type { BundleDeployment as BundleDeploymentMessage } from './generated/flotilla/v1/BundleDeployment.js';
export type { HistoryEntry as HistoryEntryMessage } from './generated/flotilla/v1/HistoryEntry.js';
export type {
  Rollout as RolloutMessage,
  Rollout__Output,
} from './generated/flotilla/v1/Rollout.js';
export type { RolloutSummary as RolloutSummaryMessage } from './generated/flotilla/v1/RolloutSummary.js';
export type {
  WatchEvent as WatchEventMessage,
  WatchEvent__Output,
} from './generated/flotilla/v1/WatchEvent.js';

/**
 * Trailer of the UNAVAILABLE status a hub ends agent streams with when it shuts down on
 * purpose (a restart, a rolling update), in ms: the agent dials again about that far apart
 * (jittered) for a while instead of backing off, so the fleet is back soon after the hub.
 * Like gRPC's `grpc-retry-pushback-ms`; agents that predate it back off as before.
 */
export const RECONNECT_TRAILER = 'flotilla-reconnect-ms';

/** Protocol version an agent announces in Hello; bumped only for incompatible changes. */
export const PROTOCOL_VERSION = 1;

/** Directory holding the .proto files (flotilla/v1/*.proto), for tools that need the sources. */
export const PROTO_ROOT = fileURLToPath(new URL('..', import.meta.url));

// Options must match proto/tools/gen-types.mjs so the generated types describe the
// objects proto-loader builds at run time.
const LOADER_OPTIONS: protoLoader.Options = {
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

/** The loaded gRPC services and messages of flotilla.v1. */
export interface FlotillaProto {
  AgentStream: AgentStreamProto['flotilla']['v1']['AgentStream'];
  FleetService: FleetProto['flotilla']['v1']['FleetService'];
  Identity: IdentityProto['flotilla']['v1']['Identity'];
}

let cached: FlotillaProto | undefined;

/** Loads the .proto files once and returns the service constructors and definitions. */
export function loadFlotillaProto(): FlotillaProto {
  if (cached) return cached;
  const def = protoLoader.loadSync(
    ['flotilla/v1/agent_stream.proto', 'flotilla/v1/fleet.proto', 'flotilla/v1/identity.proto'],
    LOADER_OPTIONS,
  );
  const pkg = grpc.loadPackageDefinition(def) as unknown as AgentStreamProto &
    FleetProto &
    IdentityProto;
  cached = {
    AgentStream: pkg.flotilla.v1.AgentStream,
    FleetService: pkg.flotilla.v1.FleetService,
    Identity: pkg.flotilla.v1.Identity,
  };
  return cached;
}
