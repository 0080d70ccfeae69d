// A Git source: keeps a shallow clone of one fleet repo in a cache directory, polls it,
// and hands out a snapshot whenever the followed ref (branch, tag, commit or semver tag
// range) names a new commit. With a fleet `path`, a commit without that directory is a
// source error, never handed out. With trusted keys, a commit that is not signed by one
// of them is never handed out. isomorphic-git speaks smart
// HTTP only; see field-notes.md.
import { join } from 'node:path';
import http from 'isomorphic-git/http/node';
import {
  Backoff,
  ConfigError,
  LogFields,
  durations,
  errorMessage,
  isDnsLabel,
  sleep,
} from '@flotilla/common';
import type { BackoffOptions, FlotillaError, Logger } from '@flotilla/common';
import type { HttpClient } from 'isomorphic-git';
import { RepoCache } from './fetch.js';
import { classify, redactUrl } from './git-errors.js';
import { FleetPathMissingError, validateFleetPath } from './fleet-path.js';
import { SubtreeCache, fleetTreeOid, readCommitTree } from './git-tree.js';
import { describeRef, refMayMove, validateSourceRef } from './refs.js';
import type { SourceRef } from './refs.js';
import type { RepoTree } from './tree.js';
import { UntrustedCommitError } from './verify.js';
import type { SignedCommit } from './verify.js';
import type { WebhookTarget } from './webhook.js';

/** Credentials for the Git server; sent as an Authorization header on every request. */
export type GitAuth = { username: string; password: string } | { token: string };

/** Options for GitSource. */
export interface GitSourceOptions {
  /** Source name (DNS label): log field, status key, cache subdirectory. */
  name: string;
  /** http(s) URL of the repository. */
  url: string;
  /** Branch to follow (default "main"); ignored when `ref` is given. */
  branch?: string;
  /** What to follow: a branch, a tag, an exact commit or a semver tag range (default: `branch`). */
  ref?: SourceRef;
  /** The fleet's root directory in the repository, e.g. "deploy/fleet" (default: the root). */
  path?: string;
  /** When set, only commits it accepts are handed out (signed by a trusted key). */
  verifier?: CommitCheck;
  /** Shared secret of this source's push webhook; without it the source has no webhook. Never logged. */
  webhookSecret?: string;
  /** Time between polls (default durations.sourcePollInterval, 30 s). */
  pollIntervalMs?: number;
  /** Fraction of the interval added at random to each wait, 0..1 (default 0.1). */
  jitter?: number;
  /** Root of the hub's source caches; this source keeps its clone in `<cacheDir>/<name>`. */
  cacheDir: string;
  /** Basic credentials, or a token sent as `Authorization: Bearer`. Never logged. */
  auth?: GitAuth;
  /** Idle time after which a request to the Git server fails (default 60 s), so a hung server cannot stall polling. */
  requestTimeoutMs?: number;
  /** Retry delays after a failed fetch (default 1 s growing to max(5 min, interval)). */
  backoff?: BackoffOptions;
  logger: Logger;
}

/** Checks a commit before it is handed out; throws (UntrustedCommitError) to refuse it. CommitVerifier implements it. */
export interface CommitCheck {
  verify(commit: SignedCommit): Promise<unknown>;
}

/** One revision of a source; readTree() loads its files (once, then memoized). */
export interface SourceSnapshot {
  source: string;
  /** Commit SHA. */
  revision: string;
  /** The files under the source's fleet path, paths relative to it. */
  readTree(): Promise<RepoTree>;
}

/** What a source did last; for the status API. */
export interface SourceStatus {
  /** What the source follows and what that resolved to, e.g. "tag v1.2.3 (semver ^1.2.0)". */
  ref: string;
  /** Commit handed out last (fetched and, with trusted keys, verified). */
  lastFetchedRevision: string | undefined;
  /** Commit refused by signature verification, while the ref still names it. */
  rejectedRevision: string | undefined;
  /** Time of the last successful fetch. */
  lastFetchAt: Date | undefined;
  /** Message of the last failure; cleared by the next success. */
  lastError: string | undefined;
  lastErrorAt: Date | undefined;
  /** Stable code of the last failure (UNAUTHENTICATED, NOT_FOUND, UNAVAILABLE, ...). */
  lastErrorCode: string | undefined;
  consecutiveFailures: number;
  /** First failure of the current run of failures; cleared by the next success. */
  failingSince: Date | undefined;
}

/** Receives snapshots in revision order, one at a time (the next fetch waits for it). */
export type SnapshotListener = (snapshot: SourceSnapshot) => void | Promise<void>;

/** Follows one ref of one Git repository over smart HTTP. */
export class GitSource {
  readonly name: string;
  /** Repository URL (no credentials). */
  readonly url: string;
  /** What this source follows. */
  readonly ref: SourceRef;
  /** The fleet's root directory in the repository ("" = the root). */
  readonly path: string;
  private readonly intervalMs: number;
  private readonly jitter: number;
  private readonly repo: RepoCache;
  /** Directories of the last commit read, reused by the next read. */
  private readonly subtrees = new SubtreeCache();
  private readonly verifier: CommitCheck | undefined;
  /** This source as a push webhook target, when a webhook secret is configured. */
  readonly webhook: WebhookTarget | undefined;
  private readonly backoff: Backoff;
  private readonly log: Logger;
  private readonly listeners = new Set<SnapshotListener>();
  private current: SourceSnapshot | undefined;
  private state: SourceStatus = {
    ref: '',
    lastFetchedRevision: undefined,
    rejectedRevision: undefined,
    lastFetchAt: undefined,
    lastError: undefined,
    lastErrorAt: undefined,
    lastErrorCode: undefined,
    consecutiveFailures: 0,
    failingSince: undefined,
  };
  private chain: Promise<unknown> = Promise.resolve();
  private loopDone: Promise<void> | undefined;
  private stopped = false;
  private triggered = false;
  private wake: AbortController | undefined;
  private verdict: { revision: string; error: unknown } | undefined;

  constructor(opts: GitSourceOptions) {
    if (!isDnsLabel(opts.name)) throw new ConfigError('name', `"${opts.name}" is not a DNS label`);
    if (!/^https?:\/\//.test(opts.url))
      throw new ConfigError(`sources.${opts.name}.url`, 'must be an http(s) URL');
    this.name = opts.name;
    this.url = opts.url;
    this.ref = validateSourceRef(
      opts.ref ?? { kind: 'branch', name: opts.branch ?? 'main' },
      `sources.${opts.name}`,
    );
    this.state.ref = describeRef(this.ref);
    // "" is the root, as the compiled config holds it; hub.yaml itself refuses `path: ""`.
    this.path = opts.path ? validateFleetPath(opts.path, `sources.${opts.name}.path`) : '';
    this.intervalMs = opts.pollIntervalMs ?? durations.sourcePollInterval;
    this.jitter = opts.jitter ?? durations.sourcePollJitter;
    if (!(this.intervalMs > 0))
      throw new ConfigError(`sources.${opts.name}.pollInterval`, 'must be positive');
    if (!(this.jitter >= 0 && this.jitter <= 1))
      throw new ConfigError(`sources.${opts.name}.pollJitter`, 'must be in 0..1');
    this.verifier = opts.verifier;
    const secret = opts.webhookSecret;
    this.webhook = secret
      ? {
          url: redactUrl(opts.url),
          secret,
          followsPushedRef: (r) => this.followsPushedRef(r),
          triggerNow: () => this.triggerNow(),
        }
      : undefined;
    this.backoff = new Backoff(
      opts.backoff ?? {
        initialMs: Math.min(1000, this.intervalMs),
        maxMs: Math.max(300_000, this.intervalMs),
      },
    );
    this.log = opts.logger.child({
      [LogFields.component]: 'source',
      [LogFields.source]: opts.name,
    });
    this.repo = new RepoCache({
      dir: join(opts.cacheDir, opts.name),
      url: opts.url,
      http: withTimeout(opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS),
      headers: authHeaders(opts.auth),
      log: this.log,
    });
  }

  /** True when a push of `pushedRef` (refs/heads/x, refs/tags/x) may change what this source follows. */
  followsPushedRef(pushedRef: string): boolean {
    return refMayMove(this.ref, pushedRef);
  }

  /** Registers a listener; returns the function that removes it. Past snapshots are not replayed: see latest(). */
  onSnapshot(listener: SnapshotListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The snapshot of the last fetched head, if any fetch succeeded. */
  latest(): SourceSnapshot | undefined {
    return this.current;
  }

  /** A copy of the source's status. */
  status(): SourceStatus {
    return { ...this.state };
  }

  /** Starts polling: a fetch now, then every interval (plus jitter), with backoff after failures. */
  start(): void {
    if (this.loopDone) return;
    this.stopped = false;
    this.loopDone = this.loop();
  }

  /** Stops polling; resolves when an in-flight fetch and its listeners are done. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.abort();
    await this.loopDone;
    this.loopDone = undefined;
  }

  /** Makes the poll loop fetch now (e.g. on a webhook); a fetch in progress is followed by another. */
  triggerNow(): void {
    this.triggered = true;
    this.wake?.abort();
  }

  /**
   * Fetches once now (serialized with the loop), emits a snapshot if the head moved, and
   * returns the latest snapshot. Failures go to status() and the log, never thrown.
   */
  async poll(): Promise<SourceSnapshot | undefined> {
    await this.pollOnce();
    return this.current;
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const ok = await this.pollOnce();
      if (this.stopped) break;
      if (this.triggered) {
        this.triggered = false;
        continue;
      }
      const delay = ok ? this.intervalMs * (1 + this.jitter * Math.random()) : this.backoff.next();
      this.wake = new AbortController();
      await sleep(delay, this.wake.signal);
      this.triggered = false;
    }
  }

  private pollOnce(): Promise<boolean> {
    const run = this.chain.then(() => this.fetchAndEmit());
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async fetchAndEmit(): Promise<boolean> {
    const started = Date.now();
    let revision: string;
    let describe: string;
    try {
      const fetched = await this.repo.fetch(this.ref);
      revision = fetched.commit;
      describe = fetched.resolved.describe;
      if (this.verifier) await this.checkTrusted(revision);
      // A commit without the fleet directory is refused here, before anyone renders it
      // (once per commit: the last fetched revision has passed this check).
      if (revision !== this.state.lastFetchedRevision) {
        const { gitdir, cache } = this.repo;
        await fleetTreeOid({ gitdir, cache, commit: revision, path: this.path });
      }
    } catch (err) {
      if (err instanceof UntrustedCommitError) {
        // Not a fetch failure: polling goes on at the normal pace, waiting for a trusted commit.
        this.recordFailure(err, { rejectedRevision: err.details?.commit as string });
        return true;
      }
      this.recordFailure(classify(err, this.name, describeRef(this.ref), this.url));
      // A missing fleet path is not a fetch failure either: polling goes on at the normal
      // pace, and the last good snapshot stays current until a commit has the path again.
      return err instanceof FleetPathMissingError;
    }
    const previous = this.state.lastFetchedRevision;
    if (this.state.consecutiveFailures > 0)
      this.log.info({ failures: this.state.consecutiveFailures }, 'fetch recovered');
    this.state = {
      ...this.state,
      ref: describe,
      lastFetchedRevision: revision,
      rejectedRevision: undefined,
      lastFetchAt: new Date(),
      lastError: undefined,
      lastErrorAt: undefined,
      lastErrorCode: undefined,
      consecutiveFailures: 0,
      failingSince: undefined,
    };
    this.backoff.reset();
    if (revision === previous && this.current) return true;
    // A commit that changes only files outside the fleet path is still handed out: its
    // rendering has the same content and digests (no agent re-applies anything), and the
    // fleet's desired revision follows the branch, so `flotilla wait --for revision=HEAD`
    // works in a monorepo.
    this.log.info(
      {
        [LogFields.revision]: revision,
        ref: describe,
        [LogFields.durationMs]: Date.now() - started,
      },
      'new revision',
    );
    this.current = this.snapshot(revision);
    await this.emit(this.current);
    return true;
  }

  /** Verifies a commit once; the verdict for the last commit is remembered (polls repeat it). */
  private async checkTrusted(revision: string): Promise<void> {
    if (this.verdict?.revision !== revision) {
      const commit = await this.repo.readSigned(revision);
      const outcome = await this.verifier!.verify(commit).then(
        () => undefined,
        (err: unknown) => err,
      );
      this.verdict = { revision, error: outcome };
    }
    if (this.verdict.error !== undefined) throw this.verdict.error;
  }

  private recordFailure(err: FlotillaError, extra: Partial<SourceStatus> = {}): void {
    const failures = this.state.consecutiveFailures + 1;
    this.state = {
      ...this.state,
      ...extra,
      lastError: err.message,
      lastErrorAt: new Date(),
      lastErrorCode: err.code,
      consecutiveFailures: failures,
      failingSince: this.state.failingSince ?? new Date(),
    };
    // Message only: the error object of an HTTP failure can carry request headers.
    this.log.warn({ [LogFields.err]: err.message, code: err.code, failures }, 'fetch failed');
  }

  private async emit(snapshot: SourceSnapshot): Promise<void> {
    for (const listener of [...this.listeners]) {
      try {
        await listener(snapshot);
      } catch (err) {
        this.log.error(
          { [LogFields.err]: errorMessage(err), [LogFields.revision]: snapshot.revision },
          'snapshot listener failed',
        );
      }
    }
  }

  private snapshot(revision: string): SourceSnapshot {
    let tree: Promise<RepoTree> | undefined;
    return {
      source: this.name,
      revision,
      readTree: () => {
        const { gitdir, cache } = this.repo;
        tree ??= readCommitTree({
          gitdir,
          commit: revision,
          cache,
          path: this.path,
          subtrees: this.subtrees,
        });
        // A failed read may succeed later (e.g. a transient fs error): do not memoize it.
        tree.catch(() => (tree = undefined));
        return tree;
      },
    };
  }
}

/** Default of GitSourceOptions.requestTimeoutMs: 60 s. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;

// isomorphic-git's node client (simple-get) honours `timeout` in fetchOptions as a
// socket idle timeout; it has none by default.
function withTimeout(timeout: number): HttpClient {
  return {
    request: (req) =>
      http.request({ ...req, fetchOptions: { ...(req.fetchOptions as object), timeout } }),
  };
}

function authHeaders(auth: GitAuth | undefined): Record<string, string> {
  if (!auth) return {};
  if ('token' in auth) return { authorization: `Bearer ${auth.token}` };
  return {
    authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`,
  };
}
