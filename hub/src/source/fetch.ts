// The per-source Git cache: one shallow repository under <cacheDir>/<name> that holds
// only the commits the source fetched. A poll lists the server's refs (one request);
// only when the chosen ref names a commit we do not have is a depth-1 pack fetched, for
// that one ref, telling the server which commit we already hold so it sends just the
// difference. A force-push needs nothing special: the new tip is fetched like any other.
import fs from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import git from 'isomorphic-git';
import type { HttpClient } from 'isomorphic-git';
import { FlotillaError } from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import { resolveRef } from './refs.js';
import type { ResolvedRef, ServerRef, SourceRef } from './refs.js';
import { commitPayload } from './verify.js';
import type { SignedCommit } from './verify.js';

/** Local ref holding the last fetched commit: sent as a "have" so fetches stay incremental. */
const HAVE_REF = 'refs/flotilla/fetched';
/**
 * Packs after which the cache starts over with one fresh depth-1 fetch (64). Every fetch
 * adds a small pack, isomorphic-git cannot repack, and each lookup consults every pack.
 */
export const MAX_CACHED_PACKS = 64;
/** git's "infinite" depth: what `git fetch --unshallow` asks for. */
const UNSHALLOW_DEPTH = 0x7fffffff;

/** How to reach the repository. */
export interface RepoCacheOptions {
  dir: string;
  url: string;
  http: HttpClient;
  /** Sent with every request (Authorization); never logged. */
  headers: Record<string, string>;
  log: Logger;
  /** Start over after this many packs (default MAX_CACHED_PACKS). */
  maxPacks?: number;
}

/** Outcome of one fetch: the commit the source's ref names now. */
export interface Fetched {
  commit: string;
  resolved: ResolvedRef;
  /** False when the commit was already in the cache (no pack transferred). */
  transferred: boolean;
}

/** The shallow repository of one source. */
export class RepoCache {
  /** Shared by every isomorphic-git call: it holds parsed pack indexes. Replaced when the repository starts over. */
  cache: object = {};
  readonly gitdir: string;

  constructor(private readonly opts: RepoCacheOptions) {
    this.gitdir = join(opts.dir, '.git');
  }

  /** Lists the server's refs, picks the one `ref` names, and fetches its commit if missing. */
  async fetch(ref: SourceRef): Promise<Fetched> {
    await this.ensureRepo();
    const refs = await this.listRefs();
    const resolved = resolveRef(ref, refs);
    if (resolved.commit && (await this.hasCommit(resolved.commit))) {
      await this.remember(resolved.commit);
      return { commit: resolved.commit, resolved, transferred: false };
    }
    const commit =
      ref.kind === 'commit'
        ? await this.fetchPinned(ref.sha, resolved)
        : await this.fetchRef(resolved.fetchRef);
    await this.remember(commit);
    return { commit, resolved, transferred: true };
  }

  /** The commit object's signature and signed payload, for verification. */
  async readSigned(oid: string): Promise<SignedCommit> {
    const at = { fs, gitdir: this.gitdir, oid, cache: this.cache };
    const { commit } = await git.readCommit(at);
    // The payload from the raw object: readCommit's is right for OpenPGP armor only.
    const { object } = await git.readObject({ ...at, format: 'content' });
    const raw = Buffer.from(object as Uint8Array).toString('utf8');
    return { oid, gpgsig: commit.gpgsig, payload: commitPayload(raw) };
  }

  private async listRefs(): Promise<ServerRef[]> {
    const { http, url, headers } = this.opts;
    // Protocol v1 advertises every ref with its peeled tag in the one GET we need anyway.
    const refs = await git.listServerRefs({
      http,
      url,
      headers,
      protocolVersion: 1,
      peelTags: true,
    });
    return refs.map((r) => ({ ref: r.ref, oid: r.oid, peeled: r.peeled }));
  }

  /**
   * Fetches one ref; returns its commit (an annotated tag is peeled). isomorphic-git
   * cannot take thin packs, and without them a server answering `deepen 1` sends the
   * whole tree again even when we hold the parent. So when we hold a previous commit we
   * ask for history since that commit's time instead: the walk reaches the commit we
   * have and the pack carries only what changed. A server that finds no commit in that
   * window (a force-push to older history) gets the plain depth-1 request.
   */
  private async fetchRef(remoteRef: string, depth = 1): Promise<string> {
    const since = depth === 1 ? await this.previousCommitTime() : undefined;
    if (since) {
      try {
        return await this.fetchOnce(remoteRef, { since });
      } catch (err) {
        if ((err as { code?: string }).code === 'HttpError') throw err;
        this.opts.log.debug(
          { err: (err as Error).message },
          'fetch since the last commit failed; fetching depth 1',
        );
      }
    }
    return this.fetchOnce(remoteRef, { depth });
  }

  private async previousCommitTime(): Promise<Date | undefined> {
    try {
      const oid = await git.resolveRef({ fs, gitdir: this.gitdir, ref: HAVE_REF });
      const { commit } = await git.readCommit({ fs, gitdir: this.gitdir, oid, cache: this.cache });
      // One second earlier, so the commit we hold is inside the window.
      return new Date((commit.committer.timestamp - 1) * 1000);
    } catch {
      return undefined; // nothing fetched yet
    }
  }

  private async fetchOnce(
    remoteRef: string,
    window: { depth: number } | { since: Date },
  ): Promise<string> {
    const res = await git.fetch({
      fs,
      http: this.opts.http,
      dir: this.opts.dir,
      cache: this.cache,
      headers: this.opts.headers,
      remote: 'origin',
      ref: HAVE_REF,
      remoteRef,
      singleBranch: true,
      ...window,
      tags: false,
    });
    if (!res.fetchHead)
      throw new FlotillaError('NOT_FOUND', `ref "${remoteRef}" not found (empty repository?)`, {
        retryable: true,
      });
    return this.peel(res.fetchHead);
  }

  // A commit no ref points at: servers that allow it (GitHub, GitLab) send it by SHA;
  // plain git servers refuse unadvertised SHAs, so fall back to the default branch's
  // full history, once (later polls find the commit in the cache).
  private async fetchPinned(sha: string, resolved: ResolvedRef): Promise<string> {
    try {
      const got = await this.fetchRef(resolved.fetchRef);
      if (got === sha) return sha;
    } catch (err) {
      if ((err as { code?: string }).code === 'HttpError') throw err; // auth and server errors are not "not advertised"
      this.opts.log.info(
        { commit: sha },
        'server refused the commit by SHA; fetching the history of HEAD',
      );
    }
    await this.fetchRef('HEAD', UNSHALLOW_DEPTH);
    if (!(await this.hasCommit(sha))) {
      throw new FlotillaError('NOT_FOUND', `commit ${sha} not found on the server`, {
        retryable: true,
      });
    }
    return sha;
  }

  private async peel(oid: string): Promise<string> {
    for (let i = 0; i < 5; i++) {
      const obj = await git.readObject({
        fs,
        gitdir: this.gitdir,
        oid,
        cache: this.cache,
        format: 'parsed',
      });
      if (obj.type !== 'tag') return oid;
      oid = (obj.object as { object: string }).object;
    }
    throw new FlotillaError('VALIDATION_FAILED', `tag chain at ${oid} is too deep`);
  }

  private async hasCommit(oid: string): Promise<boolean> {
    try {
      const obj = await git.readObject({
        fs,
        gitdir: this.gitdir,
        oid,
        cache: this.cache,
        format: 'parsed',
      });
      return obj.type === 'commit';
    } catch {
      return false; // not in the cache
    }
  }

  private async remember(commit: string): Promise<void> {
    await git.writeRef({ fs, gitdir: this.gitdir, ref: HAVE_REF, value: commit, force: true });
  }

  private async packCount(): Promise<number> {
    const names = await readdir(join(this.gitdir, 'objects', 'pack')).catch(() => []);
    return names.filter((n) => n.endsWith('.pack')).length;
  }

  /** Creates the repository on first use, or again when the cache holds another URL's clone. */
  private async ensureRepo(): Promise<void> {
    const { dir, url } = this.opts;
    let current: unknown;
    try {
      current = await git.getConfig({ fs, dir, path: 'remote.origin.url' });
    } catch {
      current = undefined; // no repository there yet
    }
    const maxPacks = this.opts.maxPacks ?? MAX_CACHED_PACKS;
    if (current === url && (await this.packCount()) <= maxPacks) return;
    if (current === url)
      this.opts.log.info(
        { packs: maxPacks },
        'cached repository has too many packs; starting a new one',
      );
    else if (current !== undefined)
      this.opts.log.info('cached repository is of another URL; starting a new one');
    this.cache = {};
    await rm(dir, { recursive: true, force: true });
    await git.init({ fs, dir });
    await git.addRemote({ fs, dir, remote: 'origin', url });
    // Tags fetched for tag and semver sources land under their own names.
    await git.setConfig({
      fs,
      dir,
      path: 'remote.origin.fetch',
      value: '+refs/tags/*:refs/tags/*',
      append: true,
    });
  }
}
