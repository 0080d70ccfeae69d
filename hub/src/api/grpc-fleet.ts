// FleetService over gRPC, answering from the same status model and history as the
// HTTP API. Bad input is INVALID_ARGUMENT, an unknown name NOT_FOUND; with identities on,
// no credentials is UNAUTHENTICATED and a cluster's certificate PERMISSION_DENIED (access.ts).
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Metadata, ServiceError } from '@grpc/grpc-js';
import { FlotillaError, errorMessage } from '@flotilla/common';
import type {
  BundleDeploymentMessage,
  ClusterStatusMessage,
  FleetServiceHandlers,
  HistoryEntryMessage,
} from '@flotilla/proto';
import type { HistoryEntry } from '../history/history-log.js';
import type { PeerCertificateLike } from '../identity/authority.js';
import type { BundleDeployment } from '../status/deployments.js';
import type { ClusterStatus } from '../status/model.js';
import { kindsParam, limitParam, revisionParam, selectorParam, stateParam } from './query.js';
import { writerOf } from './access.js';
import type { PresentedCredentials, ReadAccess } from './access.js';
import type { HistoryReader, RolloutsApi, StatusQuery } from './types.js';
import { actionParam, toRolloutMessage, toRolloutSummaryMessage } from './rollouts-api.js';
import type { RolloutAction } from '../rollout/machine.js';

// An ISO time as ms since epoch; 0 (the proto default) for never.
function ms(iso: string | null | undefined): number {
  return iso ? Date.parse(iso) : 0;
}

/** The wire form of a cluster's status. */
export function toClusterMessage(c: ClusterStatus): ClusterStatusMessage {
  return {
    name: c.name,
    labels: c.labels,
    connected: c.connected,
    lastSeenMs: ms(c.lastSeen),
    desiredRevision: c.desiredRevision,
    desiredDigest: c.desiredDigest,
    appliedRevision: c.appliedRevision,
    appliedDigest: c.appliedDigest,
    state: c.state,
    message: c.message,
    agentVersion: c.agentVersion ?? '',
    lastConnectedMs: ms(c.lastConnected),
    lastDisconnectedMs: ms(c.lastDisconnected),
    lastDisconnectReason: c.lastDisconnectReason ?? '',
    renderFailures: c.renderFailures ?? [],
    rolloutHolds: c.rolloutHolds ?? [],
  };
}

/** The wire form of a bundle deployment. */
export function toDeploymentMessage(d: BundleDeployment): BundleDeploymentMessage {
  const { lastTransition, renderFailure, rolloutHold, ...rest } = d;
  // Unset on the wire when the bundle rendered, as null in the HTTP API.
  return {
    ...rest,
    lastTransitionMs: ms(lastTransition),
    ...(renderFailure ? { renderFailure } : {}),
    ...(rolloutHold ? { rolloutHold } : {}),
  };
}

/** The wire form of a history entry. */
export function toHistoryMessage(e: HistoryEntry): HistoryEntryMessage {
  return {
    id: e.id,
    timeMs: e.timeMs,
    cluster: e.cluster,
    kind: e.kind,
    revision: e.revision,
    digest: e.digest,
    result: e.result,
    message: e.message,
    bundles: e.bundles,
    drift: e.drift,
    bundleDigests: e.bundleDigests,
    // Left unset for every other kind, as the HTTP API leaves it out.
    ...(e.session
      ? {
          session: {
            id: e.session.id,
            agentVersion: e.session.agentVersion,
            reason: e.session.reason,
            hubId: e.session.hub,
          },
        }
      : {}),
  };
}

const GRPC_CODES: Record<string, GrpcStatus> = {
  VALIDATION_FAILED: GrpcStatus.INVALID_ARGUMENT,
  CONFLICT: GrpcStatus.FAILED_PRECONDITION,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  PERMISSION_DENIED: GrpcStatus.PERMISSION_DENIED,
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
};

function toStatus(err: unknown): Partial<ServiceError> {
  const code =
    err instanceof FlotillaError
      ? (GRPC_CODES[err.code] ?? GrpcStatus.INTERNAL)
      : GrpcStatus.INTERNAL;
  return {
    code,
    details:
      code === GrpcStatus.INTERNAL && !(err instanceof FlotillaError)
        ? 'internal error'
        : errorMessage(err),
  };
}

/** The parts of a grpc-js server call the access check reads. */
export interface CallCredentials {
  metadata: Metadata;
  getAuthContext?: () => { sslPeerCertificate?: PeerCertificateLike | undefined } | null;
  getPeer(): string;
}

function credentialsOfCall(call: CallCredentials): PresentedCredentials {
  const authorization = call.metadata.get('authorization')[0];
  return {
    authorization: typeof authorization === 'string' ? authorization : undefined,
    // grpc-js fills sslPeerCertificate only when the chain verified against the hub's CA.
    peerCertificate: call.getAuthContext?.()?.sslPeerCertificate,
    from: call.getPeer(),
  };
}

// Checks the caller may read fleet status (no check without access: --insecure mode).
function authorize(call: CallCredentials, access: ReadAccess | undefined): void {
  if (!access) return;
  access.authorize(credentialsOfCall(call));
}

/** Runs fn after the access check and answers its value, or the error as a gRPC status. */
function guarded<Req, Res>(access: ReadAccess | undefined, fn: (req: Req) => Res) {
  return (
    call: CallCredentials & { request: Req },
    callback: (err: Partial<ServiceError> | null, value?: Res) => void,
  ): void => {
    let value: Res;
    try {
      authorize(call, access);
      value = fn(call.request);
    } catch (err) {
      return callback(toStatus(err));
    }
    callback(null, value);
  };
}

/** Handlers of flotilla.v1.FleetService; every call checks access when it is given. */
export function fleetServiceHandlers(
  status: StatusQuery,
  history?: HistoryReader,
  access?: ReadAccess,
  rollouts?: RolloutsApi,
): FleetServiceHandlers {
  const unary = <Req, Res>(fn: (req: Req) => Res) => guarded(access, fn);
  const withRollouts = (): RolloutsApi => {
    if (!rollouts) throw new FlotillaError('UNAVAILABLE', 'rollouts are unavailable');
    return rollouts;
  };
  return {
    ListRollouts: unary(() => ({ rollouts: withRollouts().list().map(toRolloutSummaryMessage) })),
    GetRollout: unary((r) => {
      const v = withRollouts().get(r.bundle);
      if (!v) throw new FlotillaError('NOT_FOUND', `bundle "${r.bundle}" has no rollout`);
      return toRolloutMessage(v);
    }),
    RolloutAction: (call, callback) => {
      let by: string;
      let action: RolloutAction;
      try {
        by = writerOf(access?.authorizeWrite(credentialsOfCall(call)));
        action = actionParam(call.request.action);
      } catch (err) {
        return callback(toStatus(err));
      }
      // The message is built inside the promise: whatever throws still answers the call.
      Promise.resolve()
        .then(() =>
          withRollouts().act(call.request.bundle, action, by, call.request.revision || undefined),
        )
        .then(toRolloutMessage)
        .then(
          (m) => callback(null, m),
          (err: unknown) => callback(toStatus(err)),
        );
    },
    ListClusters: unary((r) => ({
      clusters: status
        .list({
          selector: selectorParam(r.selector),
          revision: revisionParam(r.revision),
          bundleDigest: r.bundleDigest || undefined,
        })
        .map(toClusterMessage),
    })),
    GetCluster: unary((r) => {
      const d = status.describe(r.name);
      if (!d) throw new FlotillaError('NOT_FOUND', `cluster "${r.name}" not found`);
      const converged = ms(d.cluster.lastConverged);
      return {
        cluster: toClusterMessage(d.cluster),
        deployments: d.deployments.map(toDeploymentMessage),
        lastConvergedMs: converged,
      };
    }),
    ListBundles: unary(() => ({
      bundles: status
        .bundleSummaries()
        .map((b) => ({ name: b.name, clusters: b.clusters, states: b.states })),
    })),
    ListDeployments: unary((r) => {
      if (r.cluster && !status.get(r.cluster))
        throw new FlotillaError('NOT_FOUND', `cluster "${r.cluster}" not found`);
      const filter = {
        selector: selectorParam(r.selector),
        bundle: r.bundle || undefined,
        cluster: r.cluster || undefined,
        state: stateParam(r.state),
      };
      return { deployments: status.deployments(filter).map(toDeploymentMessage) };
    }),
    QueryHistory: unary((r) => {
      if (!history) throw new FlotillaError('UNAVAILABLE', 'history is unavailable');
      if (r.cluster && !status.get(r.cluster))
        throw new FlotillaError('NOT_FOUND', `cluster "${r.cluster}" not found`);
      const entries = history.query({
        cluster: r.cluster || undefined,
        bundle: r.bundle || undefined,
        revision: revisionParam(r.revision),
        bundleDigest: r.bundleDigest || undefined,
        kinds: kindsParam(r.kinds),
        sinceMs: r.sinceMs || undefined,
        untilMs: r.untilMs || undefined,
        limit: limitParam(r.limit),
      });
      return { entries: entries.map(toHistoryMessage) };
    }),
    Watch: (call) => {
      let selector;
      try {
        authorize(call, access);
        selector = selectorParam(call.request.selector);
      } catch (err) {
        // grpc-js sends a server stream's status from an 'error' event; destroy() would
        // drop the stream without one.
        call.emit('error', Object.assign(new Error(errorMessage(err)), toStatus(err)));
        return;
      }
      for (const c of status.list(selector))
        call.write({ type: 'snapshot', cluster: toClusterMessage(c) });
      const off = status.onChange((c) => {
        if (!selector || selector.matches(c.labels))
          call.write({ type: 'changed', cluster: toClusterMessage(c) });
      });
      call.on('cancelled', off);
      call.on('close', off);
      call.on('error', off);
    },
  };
}
