// FleetService over gRPC, answering from the same status model as the HTTP API.
import { status as GrpcStatus } from '@grpc/grpc-js';
import { ValidationError, errorMessage, parseSelector } from '@flotilla/common';
import type { ClusterStatusMessage, FleetServiceHandlers } from '@flotilla/proto';
import type { ClusterStatus } from '../status/model.js';
import type { StatusQuery } from './types.js';

/** The wire form of a cluster's status. */
export function toClusterMessage(c: ClusterStatus): ClusterStatusMessage {
  return {
    name: c.name,
    labels: c.labels,
    connected: c.connected,
    lastSeenMs: c.lastSeen ? Date.parse(c.lastSeen) : 0,
    desiredRevision: c.desiredRevision,
    desiredDigest: c.desiredDigest,
    appliedRevision: c.appliedRevision,
    appliedDigest: c.appliedDigest,
    state: c.state,
    message: c.message,
  };
}

/** Handlers of flotilla.v1.FleetService. */
export function fleetServiceHandlers(status: StatusQuery): FleetServiceHandlers {
  return {
    ListClusters: (call, callback) => {
      try {
        const text = call.request.selector.trim();
        const clusters = status.list(text === '' ? undefined : parseSelector(text));
        callback(null, { clusters: clusters.map(toClusterMessage) });
      } catch (err) {
        const code = err instanceof ValidationError ? GrpcStatus.INVALID_ARGUMENT : GrpcStatus.INTERNAL;
        callback({ code, details: errorMessage(err) });
      }
    },
  };
}
