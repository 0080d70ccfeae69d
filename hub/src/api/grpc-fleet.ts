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
import { ReadForbiddenError, actorOf, writerOf } from './access.js';
import type { PresentedCredentials, ReadAccess, Reader } from './access.js';
import { viewFor } from './scope.js';
import type { AuditResult, AuditSink } from '../audit/audit-log.js';
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
    ...(e.audit ? { audit: { ...e.audit } } : {}),
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
function authorize(call: CallCredentials, access: ReadAccess | undefined): Reader | undefined {
  if (!access) return undefined;
  return access.authorize(credentialsOfCall(call));
}

/** What a call reads from: everything, or a limited token's clusters only (scope.ts). */
interface View {
  status: StatusQuery;
  history: HistoryReader | undefined;
  reader: Reader | undefined;
}

/** Runs fn after the access check and answers its value, or the error as a gRPC status. */
function guarded<Req, Res>(
  access: ReadAccess | undefined,
  all: Omit<View, 'reader'>,
  fn: (req: Req, view: View) => Res,
) {
  return (
    call: CallCredentials & { request: Req },
    callback: (err: Partial<ServiceError> | null, value?: Res) => void,
  ): void => {
    let value: Res;
    try {
      const reader = authorize(call, access);
      value = fn(call.request, { ...viewFor(reader, all.status, all.history), reader });
    } catch (err) {
      return callback(toStatus(err));
    }
    callback(null, value);
  };
}

// Rollouts span the fleet: a token limited to some clusters does not read them.
function notLimited(reader: Reader | undefined): void {
  if (reader?.clusters)
    throw new ReadForbiddenError(
      `API token "${reader.name}" sees only clusters matching ${reader.clusters.text}: rollouts span the fleet`,
    );
}

/** Handlers of flotilla.v1.FleetService; every call checks access when it is given. */
export function fleetServiceHandlers(
  fleetStatus: StatusQuery,
  fleetHistory?: HistoryReader,
  access?: ReadAccess,
  rollouts?: RolloutsApi,
  audit?: AuditSink,
): FleetServiceHandlers {
  const unary = <Req, Res>(fn: (req: Req, view: View) => Res) =>
    guarded(access, { status: fleetStatus, history: fleetHistory }, fn);
  const withRollouts = (): RolloutsApi => {
    if (!rollouts) throw new FlotillaError('UNAVAILABLE', 'rollouts are unavailable');
    return rollouts;
  };
  return {
    ListRollouts: unary((_r, { reader }) => {
      notLimited(reader);
      return { rollouts: withRollouts().list().map(toRolloutSummaryMessage) };
    }),
    GetRollout: unary((r, { reader }) => {
      notLimited(reader);
      const v = withRollouts().get(r.bundle);
      if (!v) throw new FlotillaError('NOT_FOUND', `bundle "${r.bundle}" has no rollout`);
      return toRolloutMessage(v);
    }),
    RolloutAction: (call, callback) => {
      const bundle = call.request.bundle;
      let reader: Reader | undefined;
      let action: RolloutAction;
      let known: RolloutAction | undefined;
      try {
        known = actionParam(call.request.action);
      } catch {
        // An unknown action is answered after the access check, and is not a write to record.
      }
      const record = (actor: string, result: AuditResult, message: string): void => {
        if (known)
          audit?.record({ actor, action: `rollout.${known}`, target: bundle, result, message });
      };
      try {
        reader = access?.authorizeWrite(credentialsOfCall(call), (r, why) =>
          record(actorOf(r), 'denied', `rollout ${known ?? ''} of ${bundle} refused: ${why}`),
        );
        action = actionParam(call.request.action);
      } catch (err) {
        return callback(toStatus(err));
      }
      // The message is built inside the promise: whatever throws still answers the call.
      Promise.resolve()
        .then(() =>
          withRollouts().act(bundle, action, writerOf(reader), call.request.revision || undefined),
        )
        .then((v) => {
          record(actorOf(reader), 'ok', `rollout of ${bundle} ${action}: now ${v.phase}`);
          return toRolloutMessage(v);
        })
        .then(
          (m) => callback(null, m),
          (err: unknown) => {
            record(
              actorOf(reader),
              'failed',
              `rollout ${action} of ${bundle} failed: ${errorMessage(err)}`,
            );
            callback(toStatus(err));
          },
        );
    },
    ListClusters: unary((r, { status }) => ({
      clusters: status
        .list({
          selector: selectorParam(r.selector),
          revision: revisionParam(r.revision),
          bundleDigest: r.bundleDigest || undefined,
        })
        .map(toClusterMessage),
    })),
    GetCluster: unary((r, { status }) => {
      const d = status.describe(r.name);
      if (!d) throw new FlotillaError('NOT_FOUND', `cluster "${r.name}" not found`);
      const converged = ms(d.cluster.lastConverged);
      return {
        cluster: toClusterMessage(d.cluster),
        deployments: d.deployments.map(toDeploymentMessage),
        lastConvergedMs: converged,
      };
    }),
    ListBundles: unary((_r, { status }) => ({
      bundles: status
        .bundleSummaries()
        .map((b) => ({ name: b.name, clusters: b.clusters, states: b.states })),
    })),
    ListDeployments: unary((r, { status }) => {
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
    QueryHistory: unary((r, { status, history }) => {
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
      let reader: Reader | undefined;
      let status: StatusQuery;
      try {
        reader = authorize(call, access);
        status = viewFor(reader, fleetStatus, undefined).status;
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
      // Revoking the person or token ends the stream at once with UNAUTHENTICATED.
      const untrack =
        reader && access
          ? access.track(reader, (why) => {
              off();
              call.emit(
                'error',
                Object.assign(new Error(why), { code: GrpcStatus.UNAUTHENTICATED, details: why }),
              );
            })
          : () => undefined;
      const end = (): void => {
        off();
        untrack();
      };
      call.on('cancelled', end);
      call.on('close', end);
      call.on('error', end);
    },
  };
}
