// flotilla.v1.Identity over gRPC: Register (bootstrap token), Renew (cluster mTLS),
// and the administrators' cluster, API token and administrator calls (admin mTLS).
// Every refusal is a clear gRPC status; nothing is issued on a refusal. Every write
// (and every refused or failed one) is recorded in the audit log with who asked.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import type { Logger } from '@flotilla/common';
import { FlotillaError, LogFields, ValidationError, errorMessage } from '@flotilla/common';
import type { Credentials, IdentityHandlers } from '@flotilla/proto';
import type { IdentityAuthority, PeerCertificateLike, PeerIdentity } from './authority.js';
import type { IssuedCert } from './pki.js';
import type { AuditAction, AuditSink } from '../audit/audit-log.js';
import { BootstrapTokenError, IdentityRefusedError, RenewalTooSoonError } from './errors.js';

/** Something that carries a TLS auth context (a grpc-js server call). */
export interface HasAuthContext {
  getAuthContext(): { sslPeerCertificate?: PeerCertificateLike | undefined } | null;
}

/** The verified peer of a call, or an IdentityRefusedError. */
export function peerOf(call: HasAuthContext, authority: IdentityAuthority): PeerIdentity {
  // grpc-js fills sslPeerCertificate only when the chain verified against our CA.
  return authority.verifyPeer(call.getAuthContext()?.sslPeerCertificate);
}

/** The gRPC status for an identity error. */
export function grpcStatusOf(err: unknown): GrpcStatus {
  if (err instanceof IdentityRefusedError)
    return err.forbidden ? GrpcStatus.PERMISSION_DENIED : GrpcStatus.UNAUTHENTICATED;
  if (err instanceof BootstrapTokenError) return GrpcStatus.UNAUTHENTICATED;
  if (err instanceof RenewalTooSoonError) return GrpcStatus.RESOURCE_EXHAUSTED;
  if (err instanceof ValidationError) return GrpcStatus.INVALID_ARGUMENT;
  // Identity records unreachable (KV of hub replicas while NATS is away): retry.
  if (err instanceof FlotillaError && err.code === 'UNAVAILABLE') return GrpcStatus.UNAVAILABLE;
  // Revoking the last administrator is refused for the state, not a clash of names.
  if (err instanceof FlotillaError && err.code === 'CONFLICT')
    return err.details?.reason === 'last-admin'
      ? GrpcStatus.FAILED_PRECONDITION
      : GrpcStatus.ALREADY_EXISTS;
  return GrpcStatus.INTERNAL;
}

/** Options of identityHandlers. */
export interface IdentityServiceOptions {
  authority: IdentityAuthority;
  logger: Logger;
  /** Issues the agent's NATS user JWT; undefined when NATS auth is off. */
  natsJwt?: (cluster: string, publicKey: string) => Promise<string>;
  /** Where writes are recorded; none: not recorded. */
  audit?: AuditSink;
}

/** What a caller presented, for the audit record of a refusal: never more than the certificate's names. */
function presented(call: HasAuthContext): string {
  const subject = call.getAuthContext()?.sslPeerCertificate?.subject;
  const one = (v: string | string[] | undefined): string => (Array.isArray(v) ? v[0] : v) ?? '';
  if (!subject) return 'no client certificate';
  return `certificate ${one(subject.CN)} (${one(subject.O)})`;
}

const iso = (ms: number): string => new Date(ms).toISOString();

// The NATS JWT is signed a moment after the certificate, so it may outlive it by that much.
const NATS_EXPIRY_MARGIN_MS = 60_000;

type Handler<Req, Res> = (call: ServerUnaryCall<Req, Res>, cb: sendUnaryData<Res>) => void;

function unary<Req, Res>(
  name: string,
  log: Logger,
  fn: (call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): Handler<Req, Res> {
  return (call, cb) => {
    fn(call).then(
      (res) => cb(null, res),
      (err: unknown) => {
        const code = grpcStatusOf(err);
        // Only the message: never the request (it may hold a token).
        log.warn(
          {
            rpc: name,
            peer: call.getPeer(),
            code: GrpcStatus[code],
            [LogFields.err]: errorMessage(err),
          },
          'identity call refused',
        );
        cb({ code, details: err instanceof FlotillaError ? err.message : 'internal error' });
      },
    );
  };
}

/** grpc-js handlers of flotilla.v1.Identity. */
export function identityHandlers(opts: IdentityServiceOptions): IdentityHandlers {
  const { authority, logger: log } = opts;
  const credentials = async (
    cluster: string,
    issued: IssuedCert,
    natsKey: string,
  ): Promise<Credentials> => {
    const natsJwt = natsKey && opts.natsJwt ? await opts.natsJwt(cluster, natsKey) : '';
    // Recorded so that a revocation can name the key; the JWT expires with the certificate.
    if (natsJwt)
      await authority.recordNatsKey(
        cluster,
        natsKey,
        issued.notAfter.getTime() + NATS_EXPIRY_MARGIN_MS,
      );
    return {
      certificatePem: issued.certPem,
      caPem: authority.caPem,
      notAfterMs: issued.notAfter.getTime(),
      natsJwt,
    };
  };
  const admin = (call: HasAuthContext): PeerIdentity => {
    const peer = peerOf(call, authority);
    if (peer.role !== 'admin')
      throw new IdentityRefusedError('this call needs an administrator certificate', true);
    return peer;
  };
  // An administrator's write: checked, done, and recorded in the audit log either way.
  const write = async <T>(
    call: HasAuthContext,
    action: AuditAction,
    target: string,
    fn: (actor: string) => Promise<T>,
    done: (res: T) => string,
  ): Promise<T> => {
    let actor: string;
    try {
      actor = `admin ${admin(call).name}`;
    } catch (err) {
      opts.audit?.record({
        actor: presented(call),
        action,
        target,
        result: 'denied',
        message: `${action} ${target} refused: ${errorMessage(err)}`,
      });
      throw err;
    }
    try {
      const res = await fn(actor);
      opts.audit?.record({ actor, action, target, result: 'ok', message: done(res) });
      return res;
    } catch (err) {
      opts.audit?.record({
        actor,
        action,
        target,
        result: 'failed',
        message: `${action} ${target} failed: ${errorMessage(err)}`,
      });
      throw err;
    }
  };
  return {
    Register: unary('Register', log, async (call) => {
      const r = call.request;
      const issued = await authority.register(r.cluster, r.token, r.csrPem);
      return credentials(r.cluster, issued, r.natsPublicKey);
    }),
    Renew: unary('Renew', log, async (call) => {
      const peer = peerOf(call, authority);
      const issued = await authority.renew(peer, call.request.csrPem);
      return credentials(peer.name, issued, call.request.natsPublicKey);
    }),
    AddCluster: unary('AddCluster', log, async (call) => {
      const r = call.request;
      const { token, expiresAtMs } = await write(
        call,
        'cluster.add',
        r.name,
        () => authority.addCluster(r.name, r.labels ?? {}, r.tokenTtlMs),
        (res) => `cluster ${r.name} added; bootstrap token valid until ${iso(res.expiresAtMs)}`,
      );
      return { token, expiresAtMs, caPem: authority.caPem };
    }),
    RevokeCluster: unary('RevokeCluster', log, async (call) => {
      const name = call.request.name;
      const streamsClosed = await write(
        call,
        'cluster.revoke',
        name,
        () => authority.revoke(name),
        (n) => `cluster ${name} revoked; ${n} stream(s) closed`,
      );
      return { streamsClosed };
    }),
    ListIdentities: unary('ListIdentities', log, async (call) => {
      admin(call);
      return {
        clusters: authority.list().map((c) => ({
          name: c.name,
          labels: c.labels,
          addedAtMs: c.addedAtMs,
          revokedAtMs: c.revokedAtMs ?? 0,
          certificates: Object.keys(c.serials).length,
          lastIssuedAtMs: c.lastIssuedAtMs ?? 0,
        })),
      };
    }),
    CreateApiToken: unary('CreateApiToken', log, async (call) => {
      const r = call.request;
      const ttl = Number(r.ttlMs ?? 0);
      return write(
        call,
        'token.create',
        r.name,
        () => authority.apiTokens.create(r.name, ttl, r.scopes ?? [], r.selector ?? ''),
        (res) =>
          `API token ${r.name} created (${res.scopes.join(', ')}${res.selector ? `; clusters ${res.selector}` : ''}); valid until ${iso(res.expiresAtMs)}`,
      );
    }),
    ListApiTokens: unary('ListApiTokens', log, async (call) => {
      admin(call);
      return { tokens: authority.apiTokens.list() };
    }),
    RevokeApiToken: unary('RevokeApiToken', log, async (call) => {
      const name = call.request.name;
      await write(
        call,
        'token.revoke',
        name,
        () => authority.apiTokens.revoke(name),
        (n) => `API token ${name} revoked; ${n} stream(s) closed`,
      );
      return {};
    }),
    AddAdmin: unary('AddAdmin', log, async (call) => {
      const r = call.request;
      const issued = await write(
        call,
        'admin.add',
        r.name,
        (actor) => authority.admins.add(r.name, r.csrPem, Number(r.ttlMs ?? 0), actor),
        (res) =>
          `administrator certificate for ${r.name} issued (serial ${res.serial}); valid until ${res.notAfter.toISOString()}`,
      );
      return {
        certificatePem: issued.certPem,
        caPem: authority.caPem,
        notAfterMs: issued.notAfter.getTime(),
        serial: issued.serial,
      };
    }),
    RevokeAdmin: unary('RevokeAdmin', log, async (call) => {
      const name = call.request.name;
      const streamsClosed = await write(
        call,
        'admin.revoke',
        name,
        () => authority.admins.revoke(name),
        (n) => `administrator ${name} revoked; ${n} stream(s) closed`,
      );
      return { streamsClosed };
    }),
    ListAdmins: unary('ListAdmins', log, async (call) => {
      admin(call);
      return { admins: authority.admins.list() };
    }),
  };
}
