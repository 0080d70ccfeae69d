// Who may read fleet status over gRPC (FleetService) and HTTP (/api/v1/*). A cluster
// sees only its own desired state and speaks only for itself, so its certificate does not
// open the fleet's status and history: a reader is the administrator's certificate or
// an API token (`flotilla token create`). In --insecure mode there are no identities and
// no check (app.ts passes no ReadAccess).
import type { Logger, Selector } from '@flotilla/common';
import { FlotillaError, LogFields, errorMessage } from '@flotilla/common';
import type { PeerCertificateLike, PeerIdentity } from '../identity/authority.js';
import type { ApiTokenCheck } from '../identity/api-tokens.js';

/** What the access check needs from the identity authority (IdentityAuthority implements it). */
export interface ReaderAuthority {
  verifyPeer(cert: PeerCertificateLike | undefined): PeerIdentity;
  readonly apiTokens: { check(token: string): ApiTokenCheck };
}

/** The credentials a request or call carried. */
export interface PresentedCredentials {
  /** The `Authorization` header or metadata value, as sent. */
  authorization?: string | undefined;
  /** A client certificate whose chain verified against the hub's CA. */
  peerCertificate?: PeerCertificateLike | undefined;
  /** A client certificate was sent but did not verify against the hub's CA. */
  untrustedCertificate?: boolean;
  /** Where the request came from, for the refusal's log line. */
  from?: string | undefined;
}

/** An authorised reader: who it is, for logs, and whether it may also act (write). */
export interface Reader {
  via: 'token' | 'certificate';
  name: string;
  /** May act on rollouts: an administrator, or a token with the rollout or write scope. */
  write: boolean;
  /** The clusters it may see (a token created with --selector); absent: every cluster. */
  clusters?: { text: string; selector: Selector } | undefined;
}

/** Who a write (rollout action) is from, for history: the token or certificate name. */
export function writerOf(reader: Reader | undefined): string {
  if (!reader) return 'anonymous (insecure hub)';
  return reader.via === 'token' ? `token ${reader.name}` : reader.name;
}

/** Who did something, for the audit log: "admin alice", "token ci", or the insecure hub's anonymous. */
export function actorOf(reader: Reader | undefined): string {
  if (!reader) return 'anonymous (insecure hub)';
  return reader.via === 'token' ? `token ${reader.name}` : `admin ${reader.name}`;
}

/** No credentials, or credentials that are not (or no longer) valid: 401 / UNAUTHENTICATED. */
export class NotAuthenticatedError extends FlotillaError {
  constructor(message: string) {
    super('UNAUTHENTICATED', message);
  }
}

/** Valid credentials that may not read fleet status: 403 / PERMISSION_DENIED. */
export class ReadForbiddenError extends FlotillaError {
  constructor(message: string) {
    super('PERMISSION_DENIED', message);
  }
}

/** What a caller without credentials is told. */
const CREDENTIALS_NEEDED =
  'reading fleet status needs credentials: an API token (Authorization: Bearer <token>, see `flotilla token create`) or an administrator certificate (see `flotilla admin add`)';

const TOKEN_REFUSED: Record<Exclude<ApiTokenCheck, { ok: true }>['reason'], string> = {
  malformed: 'the bearer token is not a Flotilla API token',
  unknown: 'the API token is not known to this hub',
  expired: 'the API token has expired',
  revoked: 'the API token has been revoked',
};

/** Checks credentials for reading fleet status; logs refusals (with a token's name, never the token). */
export class ReadAccess {
  constructor(
    private readonly authority: ReaderAuthority,
    private readonly logger: Logger,
  ) {}

  /** The reader, or a NotAuthenticatedError / ReadForbiddenError. */
  authorize(creds: PresentedCredentials): Reader {
    try {
      return this.decide(creds);
    } catch (err) {
      this.refused(creds, err, 'fleet read refused');
      throw err;
    }
  }

  /**
   * The writer (rollout actions): an administrator's certificate or a token with the
   * rollout (or write) scope and no cluster selector; any other reader is a
   * ReadForbiddenError (403) naming the fix. `denied` hears of a refusal of a known reader.
   */
  authorizeWrite(
    creds: PresentedCredentials,
    denied?: (reader: Reader, why: string) => void,
  ): Reader {
    const reader = this.authorize(creds);
    let why: string | undefined;
    if (!reader.write)
      why = `API token "${reader.name}" may only read: rollout actions need an administrator certificate or a token created with --scope rollout`;
    else if (reader.clusters)
      why = `API token "${reader.name}" sees only clusters matching ${reader.clusters.text}: it cannot act on rollouts, which span the fleet`;
    if (why === undefined) return reader;
    const err = new ReadForbiddenError(why);
    this.refused(creds, err, 'fleet write refused');
    denied?.(reader, why);
    throw err;
  }

  /**
   * Remembers an open stream (a watch) of a reader, so revoking the person or token closes
   * it at once; returns the function that forgets it (call it when the stream ends).
   */
  track(reader: Reader, close: (why: string) => void): () => void {
    const key = `${reader.via}\u0000${reader.name}`;
    let set = this.open.get(key);
    if (!set) {
      set = new Set();
      this.open.set(key, set);
    }
    const entry = { close };
    set.add(entry);
    return () => {
      set.delete(entry);
      if (set.size === 0 && this.open.get(key) === set) this.open.delete(key);
    };
  }

  /** Closes every open stream of a revoked person or token; returns how many. */
  closeStreams(via: Reader['via'], name: string, why: string): number {
    const key = `${via}\u0000${name}`;
    const set = this.open.get(key);
    if (!set) return 0;
    this.open.delete(key);
    // Closing a stream forgets it (its end handler untracks it): count and copy first.
    const streams = [...set];
    for (const s of streams) s.close(why);
    return streams.length;
  }

  private readonly open = new Map<string, Set<{ close: (why: string) => void }>>();

  // Logs a refusal with a token's name, never the token.
  private refused(creds: PresentedCredentials, err: unknown, what: string): void {
    this.logger.warn(
      {
        from: creds.from,
        ...(err instanceof TokenRefusedError && err.tokenName ? { tokenName: err.tokenName } : {}),
        [LogFields.err]: errorMessage(err),
      },
      what,
    );
  }

  private decide(creds: PresentedCredentials): Reader {
    const auth = creds.authorization?.trim();
    if (auth) {
      const m = /^Bearer\s+(\S+)$/i.exec(auth);
      if (!m) throw new NotAuthenticatedError('the Authorization header must be "Bearer <token>"');
      const check = this.authority.apiTokens.check(m[1] as string);
      if (!check.ok) throw new TokenRefusedError(TOKEN_REFUSED[check.reason], check.name);
      return {
        via: 'token',
        name: check.name,
        write: check.scopes.includes('rollout') || check.scopes.includes('write'),
        ...(check.clusters ? { clusters: check.clusters } : {}),
      };
    }
    if (creds.untrustedCertificate)
      throw new NotAuthenticatedError('the client certificate is not signed by this hub');
    if (!creds.peerCertificate) throw new NotAuthenticatedError(CREDENTIALS_NEEDED);
    let peer: PeerIdentity;
    try {
      peer = this.authority.verifyPeer(creds.peerCertificate);
    } catch (err) {
      throw new NotAuthenticatedError(errorMessage(err));
    }
    if (peer.role !== 'admin')
      throw new ReadForbiddenError('cluster certificates may not read fleet status');
    return { via: 'certificate', name: peer.name, write: true };
  }
}

class TokenRefusedError extends NotAuthenticatedError {
  constructor(
    message: string,
    readonly tokenName: string | undefined,
  ) {
    super(message);
  }
}
