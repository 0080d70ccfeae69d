// API tokens: bearer credentials for reading fleet status (dashboards, CI, the web page)
// where no client certificate fits; a token created with the write scope may also act on
// rollouts (approve, pause, resume, abort, retry). A token is "flt_" + 32 random bytes (base64url),
// shown once at creation; the hub keeps only its sha256 digest, with a name, creation
// time, expiry and last use, in the identity state file. Revoking keeps the record (so
// a refusal can name it) and takes effect on the next request.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Logger } from '@flotilla/common';
import type { Selector } from '@flotilla/common';
import {
  FlotillaError,
  ValidationError,
  errorMessage,
  isDnsLabel,
  parseSelector,
} from '@flotilla/common';
import { sha256 } from './authority.js';
import type { ApiTokenRecord } from './store.js';
import { UNCHANGED } from './records.js';
import type { IdentityRecords } from './records.js';

// Prefix of every API token, so a leaked one is recognisable (and not a bootstrap token).
const API_TOKEN_PREFIX = 'flt_';
/** Lifetime of an API token created without one (90 days). */
export const API_TOKEN_DEFAULT_TTL_MS = 90 * 86_400_000;
// Last use is written to disk at most this often per token (1 min): not on every request.
const API_TOKEN_LAST_USED_SAVE_MS = 60_000;

// 32 random bytes are 43 base64url characters.
const TOKEN_RE = new RegExp(`^${API_TOKEN_PREFIX}[A-Za-z0-9_-]{43}$`);

/**
 * What a token may do: read fleet status (always); act on rollouts (rollout); every write
 * a token may make (write, which includes rollout).
 */
export type ApiTokenScope = 'read' | 'rollout' | 'write';

/** Every scope, for messages and checks. */
export const API_TOKEN_SCOPES: readonly ApiTokenScope[] = ['read', 'rollout', 'write'];

/** Longest label selector a token may carry (1,024 characters). */
const MAX_SELECTOR_LENGTH = 1_024;

/** The scopes granted for those asked: read always; write implies rollout. */
export function grantedScopes(asked: readonly string[]): ApiTokenScope[] {
  if (asked.includes('write')) return ['read', 'rollout', 'write'];
  if (asked.includes('rollout')) return ['read', 'rollout'];
  return ['read'];
}

/** The outcome of checking a presented token; `name` only when the token was recognised. */
export type ApiTokenCheck =
  | {
      ok: true;
      name: string;
      scopes: ApiTokenScope[];
      /** The clusters the token may see; absent: every cluster. */
      clusters?: { text: string; selector: Selector };
    }
  | { ok: false; reason: 'malformed' | 'unknown' | 'expired' | 'revoked'; name?: string };

/** An API token as `flotilla token list` shows it: never the token itself. */
export interface ApiTokenInfo {
  name: string;
  createdAtMs: number;
  expiresAtMs: number;
  lastUsedAtMs: number;
  revokedAtMs: number;
  scopes: ApiTokenScope[];
  /** The clusters it may see ("" for all). */
  selector: string;
}

/** Creates, lists, revokes and checks API tokens in the identity state. */
export class ApiTokens {
  constructor(
    private readonly records: IdentityRecords,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {
    // A token revoked through another hub replica closes its watches here too.
    records.onRemoteChange((kind, name, before, after) => {
      if (kind !== 'apiTokens') return;
      const was = before as ApiTokenRecord | undefined;
      const is = after as ApiTokenRecord | undefined;
      if (is?.revokedAtMs !== undefined && was?.revokedAtMs === undefined) {
        const closed = this.closeStreams(name);
        this.logger.warn(
          { tokenName: name, streamsClosed: closed },
          'API token revoked on another hub replica',
        );
      }
    });
  }

  /** When each token's last use was last written to disk (this process). */
  private readonly savedUseAt = new Map<string, number>();
  /** Compiled selectors by their text. */
  private readonly selectors = new Map<string, Selector>();
  private readonly revokeListeners: Array<(name: string) => number> = [];

  /** Registers a listener told when a token is revoked; it returns how many streams it closed. */
  onRevoke(listener: (name: string) => number): void {
    this.revokeListeners.push(listener);
  }

  private compiled(text: string): Selector {
    let sel = this.selectors.get(text);
    if (!sel) {
      sel = parseSelector(text);
      this.selectors.set(text, sel);
    }
    return sel;
  }

  private get tokens(): Record<string, ApiTokenRecord> {
    return this.records.view.apiTokens;
  }

  private closeStreams(name: string): number {
    let closed = 0;
    for (const l of this.revokeListeners) closed += l(name);
    return closed;
  }

  /**
   * Creates a token; a live token of the same name is a CONFLICT (revoke it first).
   * Scopes default to read only; "rollout" adds rollout actions, "write" every write
   * (read is always included). A selector limits every read to the clusters it matches.
   */
  async create(
    name: string,
    ttlMs = 0,
    scopes: readonly string[] = [],
    selector = '',
  ): Promise<{ token: string; expiresAtMs: number; scopes: ApiTokenScope[]; selector: string }> {
    if (!isDnsLabel(name))
      throw new ValidationError(
        `token name "${name}" must be a DNS label (lower-case letters, digits, '-')`,
      );
    for (const sc of scopes)
      if (!API_TOKEN_SCOPES.includes(sc as ApiTokenScope))
        throw new ValidationError(
          `token scope "${sc}" is not known (use ${API_TOKEN_SCOPES.join(' or ')})`,
        );
    const granted = grantedScopes(scopes);
    const sel = selector.trim();
    if (sel.length > MAX_SELECTOR_LENGTH)
      throw new ValidationError(`token selector is longer than ${MAX_SELECTOR_LENGTH} characters`);
    if (sel) {
      try {
        if (this.compiled(sel).empty) throw new Error('it selects every cluster');
      } catch (err) {
        throw new ValidationError(`token selector "${sel}": ${errorMessage(err)}`);
      }
    }
    const now = this.now();
    const token = API_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const expiresAtMs = now + (ttlMs > 0 ? ttlMs : API_TOKEN_DEFAULT_TTL_MS);
    // Compare-and-set: of two creating one name at once (two replicas), one gets CONFLICT.
    await this.records.update('apiTokens', name, (existing) => {
      if (existing && existing.revokedAtMs === undefined && existing.expiresAtMs > now)
        throw new FlotillaError('CONFLICT', `API token "${name}" already exists: revoke it first`);
      return {
        name,
        digest: sha256(token).toString('hex'),
        createdAtMs: now,
        expiresAtMs,
        scopes: granted,
        ...(sel ? { selector: sel } : {}),
      };
    });
    this.logger.info(
      {
        tokenName: name,
        expiresAt: new Date(expiresAtMs).toISOString(),
        scopes: granted,
        ...(sel ? { selector: sel } : {}),
      },
      'API token created',
    );
    return { token, expiresAtMs, scopes: granted, selector: sel };
  }

  /** Revokes a token by name: the next request is refused and its open watches are closed. */
  async revoke(name: string): Promise<number> {
    const now = this.now();
    await this.records.update('apiTokens', name, (r) => {
      if (!r) throw new ValidationError(`API token "${name}" does not exist`);
      r.revokedAtMs ??= now;
      return r;
    });
    const closed = this.closeStreams(name);
    this.logger.warn({ tokenName: name, streamsClosed: closed }, 'API token revoked');
    return closed;
  }

  /** Every token, by name. */
  list(): ApiTokenInfo[] {
    return Object.values(this.tokens)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((r) => ({
        name: r.name,
        createdAtMs: r.createdAtMs,
        expiresAtMs: r.expiresAtMs,
        lastUsedAtMs: r.lastUsedAtMs ?? 0,
        revokedAtMs: r.revokedAtMs ?? 0,
        scopes: r.scopes ?? ['read'],
        selector: r.selector ?? '',
      }));
  }

  /** Checks a presented token; compares digests in constant time against every record. */
  check(token: string): ApiTokenCheck {
    if (!TOKEN_RE.test(token)) return { ok: false, reason: 'malformed' };
    const presented = sha256(token);
    let found: ApiTokenRecord | undefined;
    // No early exit: the time taken does not depend on which record (if any) matched.
    for (const r of Object.values(this.tokens)) {
      const d = Buffer.from(r.digest, 'hex');
      if (d.length === presented.length && timingSafeEqual(d, presented)) found = r;
    }
    if (!found) return { ok: false, reason: 'unknown' };
    if (found.revokedAtMs !== undefined) return { ok: false, reason: 'revoked', name: found.name };
    const now = this.now();
    if (found.expiresAtMs <= now) return { ok: false, reason: 'expired', name: found.name };
    this.touch(found, now);
    const scopes = found.scopes ?? ['read'];
    if (!found.selector) return { ok: true, name: found.name, scopes };
    return {
      ok: true,
      name: found.name,
      scopes,
      clusters: { text: found.selector, selector: this.compiled(found.selector) },
    };
  }

  private touch(r: ApiTokenRecord, now: number): void {
    r.lastUsedAtMs = now;
    // Measured from the last write, not the last use: a token used every few seconds
    // still gets its last use written once a minute.
    if (now - (this.savedUseAt.get(r.name) ?? 0) < API_TOKEN_LAST_USED_SAVE_MS) return;
    this.savedUseAt.set(r.name, now);
    this.records
      .update('apiTokens', r.name, (cur) =>
        // The view's record already shows this use (above): the write must not compare with it.
        cur ? { ...cur, lastUsedAtMs: Math.max(cur.lastUsedAtMs ?? 0, now) } : UNCHANGED,
      )
      .catch((err: unknown) =>
        this.logger.warn(
          { tokenName: r.name, err: errorMessage(err) },
          'recording token use failed',
        ),
      );
  }
}
