// The hub's identity records, persisted as one JSON file in the hub's state directory
// (mode 0600, written atomically): registered clusters, the serials of the certificates
// issued to each, bootstrap tokens and API tokens — stored only as sha256 digests, never
// in clear.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigError } from '@flotilla/common';

/** One registered cluster. */
export interface ClusterRecord {
  name: string;
  labels: Record<string, string>;
  addedAtMs: number;
  /** Set by `flotilla cluster revoke`; cleared by a new `cluster add`. */
  revokedAtMs?: number;
  /** Certificates issued, not revoked and not expired: serial (upper-case hex) → notAfter (ms). */
  serials: Record<string, number>;
  lastIssuedAtMs?: number;
  /**
   * When the cluster last renewed its certificate (ms, the writing replica's clock): the
   * renewal rate limit, shared by hub replicas through the record.
   */
  renewedAtMs?: number;
  /** NATS user public keys the hub signed JWTs for → when those JWTs expire (ms). */
  natsKeys?: Record<string, number>;
}

/** One bootstrap token: its id is public, its secret is kept only as a digest. */
export interface TokenRecord {
  id: string;
  cluster: string;
  /** hex sha256 of the secret part. */
  digest: string;
  expiresAtMs: number;
  usedAtMs?: number;
}

/** One API token for reading fleet status (dashboards, CI): kept only as a sha256 digest. */
export interface ApiTokenRecord {
  name: string;
  /** hex sha256 of the whole token. */
  digest: string;
  createdAtMs: number;
  /** When it expires (ms); always set (tokens are created with a lifetime). */
  expiresAtMs: number;
  lastUsedAtMs?: number;
  /** Set by `flotilla token revoke`; the record stays so that refusals can name it. */
  revokedAtMs?: number;
  /** What it may do; absent (tokens made before scopes existed) means read only. */
  scopes?: ('read' | 'rollout' | 'write')[];
  /** A label selector: the token sees only the clusters it matches (absent: every cluster). */
  selector?: string;
}

/** One administrator (a person): the certificates issued to them, checked by serial. */
export interface AdminRecord {
  name: string;
  addedAtMs: number;
  /** Who added them: "hub init" for the first administrator, else "admin NAME". */
  addedBy: string;
  /** Set by `flotilla admin revoke`; cleared by a new `admin add`. */
  revokedAtMs?: number;
  /** Certificates issued, not revoked and not expired: serial (upper-case hex) → notAfter (ms). */
  serials: Record<string, number>;
  lastIssuedAtMs?: number;
}

/**
 * The names of a set of records kept in one record, so that a rule over the whole set is
 * one compare-and-set. Key `admins`: the people not revoked; every revocation removes its
 * person here first, so two revocations at the same moment (two hub replicas) cannot
 * both pass the last-administrator check.
 */
export interface RosterRecord {
  names: string[];
}

/** A revoked NATS user key: when revoked (s), and when its JWT expires anyway (ms). */
export interface NatsRevocation {
  revokedAtS: number;
  expiresAtMs: number;
}

/** The whole file. */
export interface IdentityState {
  version: 1;
  clusters: Record<string, ClusterRecord>;
  tokens: TokenRecord[];
  /** NATS user keys of revoked clusters → when revoked (s) and when their JWT expires anyway (ms). */
  natsRevocations?: Record<string, NatsRevocation>;
  /** API tokens by name (`flotilla token`); absent in files written before they existed. */
  apiTokens?: Record<string, ApiTokenRecord>;
  /** Administrators by name (`flotilla admin`); absent in files written before they existed. */
  admins?: Record<string, AdminRecord>;
  /** Rosters by key (RosterRecord); absent in files written before they existed. */
  rosters?: Record<string, RosterRecord>;
}

/** Reads and writes identity-state.json; writes are serialized. */
export class IdentityStore {
  private writing: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  /** Loads the file; a missing file is an empty state. */
  async load(): Promise<IdentityState> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return { version: 1, clusters: {}, tokens: [] };
      throw new ConfigError(
        'identity.stateDir',
        `cannot read ${this.file}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    try {
      const state = JSON.parse(text) as IdentityState;
      if (state.version !== 1 || typeof state.clusters !== 'object' || !Array.isArray(state.tokens))
        throw new Error('unexpected shape');
      return state;
    } catch (err) {
      throw new ConfigError(
        'identity.stateDir',
        `${this.file} is corrupt: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }

  /** Writes the state atomically (temp file + rename), after any write in progress. */
  save(state: IdentityState): Promise<void> {
    const text = JSON.stringify(state, null, 2);
    const next = this.writing.then(async () => {
      await mkdir(dirname(this.file), { recursive: true, mode: 0o700 });
      const tmp = `${this.file}.tmp`;
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, this.file);
    });
    // A failed write must not block later ones; the caller still sees its own failure.
    this.writing = next.catch(() => undefined);
    return next;
  }
}
