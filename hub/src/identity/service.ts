// flotilla.v1.Identity over gRPC: Register (bootstrap token), Renew (cluster mTLS),
// and the administrator's AddCluster / RevokeCluster / ListIdentities and API token calls
// (admin mTLS).
// Every refusal is a clear gRPC status; nothing is issued on a refusal.
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { sendUnaryData, ServerUnaryCall } from '@grpc/grpc-js';
import type { Logger } from '@flotilla/common';
import { FlotillaError, LogFields, ValidationError, errorMessage } from '@flotilla/common';
import type { Credentials, IdentityHandlers } from '@flotilla/proto';
import type { IdentityAuthority, PeerCertificateLike, PeerIdentity } from './authority.js';
import type { IssuedCert } from './pki.js';
import { BootstrapTokenError, IdentityRefusedError } from './errors.js';

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
  if (err instanceof ValidationError) return GrpcStatus.INVALID_ARGUMENT;
  if (err instanceof FlotillaError && err.code === 'CONFLICT') return GrpcStatus.ALREADY_EXISTS;
  return GrpcStatus.INTERNAL;
}

/** Options of identityHandlers. */
export interface IdentityServiceOptions {
  authority: IdentityAuthority;
  logger: Logger;
  /** Issues the agent's NATS user JWT; undefined when NATS auth is off. */
  natsJwt?: (cluster: string, publicKey: string) => Promise<string>;
}

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
  const admin = (call: HasAuthContext): void => {
    if (peerOf(call, authority).role !== 'admin')
      throw new IdentityRefusedError('this call needs the hub administrator certificate', true);
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
      admin(call);
      const r = call.request;
      const { token, expiresAtMs } = await authority.addCluster(
        r.name,
        r.labels ?? {},
        r.tokenTtlMs,
      );
      return { token, expiresAtMs, caPem: authority.caPem };
    }),
    RevokeCluster: unary('RevokeCluster', log, async (call) => {
      admin(call);
      return { streamsClosed: await authority.revoke(call.request.name) };
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
      admin(call);
      const ttl = Number(call.request.ttlMs ?? 0);
      return authority.apiTokens.create(call.request.name, ttl, call.request.scopes ?? []);
    }),
    ListApiTokens: unary('ListApiTokens', log, async (call) => {
      admin(call);
      return { tokens: authority.apiTokens.list() };
    }),
    RevokeApiToken: unary('RevokeApiToken', log, async (call) => {
      admin(call);
      await authority.apiTokens.revoke(call.request.name);
      return {};
    }),
  };
}
