// Reads a commit's tree straight from the object store (no checkout), so a snapshot is
// exactly the commit's content whatever happens to the work tree.
import fs from 'node:fs';
import git from 'isomorphic-git';
import { FleetPathMissingError } from './fleet-path.js';
import { MapRepoTree, isReadRoot } from './tree.js';
import type { RejectedEntry, RepoTree } from './tree.js';
import { printablePath, treeNameProblem } from './tree-paths.js';
import { ValidationError } from '@flotilla/common';

/** Where to read a commit from. */
export interface CommitTreeOptions {
  /** The repository's .git directory (or a bare repository). */
  gitdir: string;
  /** Commit SHA. */
  commit: string;
  /** isomorphic-git cache object, shared with the fetches (holds parsed pack indexes). */
  cache: object;
  /** Top-level entries to read (default: every one isReadRoot accepts). */
  roots?: readonly string[];
  /** The fleet's root directory in the repository, normalised ("" = the root, the default). */
  path?: string;
  /** Subtrees read last time, reused by object id so a one-file change reads one file. */
  subtrees?: SubtreeCache;
}

/** The files of one Git tree object, with paths relative to it. */
interface SubtreeFiles {
  files: readonly (readonly [string, Buffer])[];
  rejected: readonly RejectedEntry[];
}

/**
 * Remembers the files of tree objects between reads of successive commits. A tree's id
 * is the digest of its content, so an unchanged directory is reused without reading it.
 * Keeps what the last read used (plus what the current one adds): memory follows the
 * repo, not its history.
 */
export class SubtreeCache {
  private last = new Map<string, SubtreeFiles>();
  private next = new Map<string, SubtreeFiles>();

  /** A cached tree, marked as used by the current read. */
  get(oid: string): SubtreeFiles | undefined {
    const hit = this.next.get(oid) ?? this.last.get(oid);
    if (hit) this.next.set(oid, hit);
    return hit;
  }

  /** Stores a tree read by the current read. */
  set(oid: string, files: SubtreeFiles): void {
    this.next.set(oid, files);
  }

  /** Ends a read: forgets trees it did not use. */
  rotate(): void {
    this.last = this.next;
    this.next = new Map();
  }
}

const MODE_SYMLINK = '120000';

type Entry = { mode: string; oid: string; type: 'commit' | 'blob' | 'tree'; path: string };

/** Where the fleet's root tree is read from. */
export interface FleetTreeLocation {
  gitdir: string;
  commit: string;
  cache: object;
  /** Normalised fleet path ("" = the repository root). */
  path: string;
}

/**
 * The id of the tree object at the fleet path of a commit. Equal ids mean equal fleet
 * content, so a commit that changes only files outside the path can be recognised
 * without reading a file. Throws FleetPathMissingError when the path is missing, or is
 * a file, a symlink or a submodule.
 */
export async function fleetTreeOid(loc: FleetTreeLocation): Promise<string> {
  const { gitdir, commit, cache, path } = loc;
  if (path === '') return (await git.readTree({ fs, gitdir, oid: commit, cache })).oid;
  let tree = (await git.readTree({ fs, gitdir, oid: commit, cache })).tree;
  let oid = '';
  const segments = path.split('/');
  for (const [i, name] of segments.entries()) {
    const entry = tree.find((e) => e.path === name);
    const at = segments.slice(0, i + 1).join('/');
    if (!entry) throw new FleetPathMissingError(path, commit);
    if (entry.type !== 'tree' || entry.mode === MODE_SYMLINK)
      throw new FleetPathMissingError(
        path,
        commit,
        `is not a directory ("${at}" is a ${kindOf(entry)})`,
      );
    ({ oid, tree } = await git.readTree({ fs, gitdir, oid: entry.oid, cache }));
  }
  return oid;
}

function kindOf(entry: Entry): string {
  if (entry.type === 'commit') return 'submodule';
  return entry.mode === MODE_SYMLINK ? 'symbolic link' : 'file';
}

/**
 * Loads the files of a commit into memory (hidden top-level entries left out); with
 * `path`, those under that directory, with paths relative to it.
 */
export async function readCommitTree(opts: CommitTreeOptions): Promise<RepoTree> {
  const files = new Map<string, Buffer>();
  const rejected: RejectedEntry[] = [];
  const { gitdir, commit, cache: gitCache } = opts;
  const rootOid = await fleetTreeOid({ gitdir, commit, cache: gitCache, path: opts.path ?? '' });
  const top = { tree: await treeEntries(opts, rootOid).catch(unsafeAtRoot) };
  const roots = opts.roots ? new Set(opts.roots) : undefined;
  const cache = opts.subtrees ?? new SubtreeCache();
  for (const entry of top.tree) {
    if (roots ? !roots.has(entry.path) : !isReadRoot(entry.path)) continue;
    const sub = await readChild(opts, cache, entry).catch(unsafeAtRoot);
    for (const [path, bytes] of sub.files)
      files.set(path === '' ? entry.path : `${entry.path}/${path}`, bytes);
    for (const r of sub.rejected)
      rejected.push({ ...r, path: r.path === '' ? entry.path : `${entry.path}/${r.path}` });
  }
  cache.rotate();
  return new MapRepoTree(files, rejected);
}

/** The entries of a tree object. */
async function treeEntries(opts: CommitTreeOptions, oid: string): Promise<Entry[]> {
  try {
    return (await git.readTree({ fs, gitdir: opts.gitdir, oid, cache: opts.cache })).tree;
  } catch (err) {
    // The Git library refuses some hostile names itself: same error as ours, with the path.
    const code = (err as { code?: unknown }).code;
    const name = (err as { data?: { filepath?: unknown } }).data?.filepath;
    if (code === 'UnsafeFilepathError')
      throw new UnsafeTreeEntry(typeof name === 'string' ? name : '?', 'a name Git refuses');
    throw err;
  }
}

/** A tree entry whose name the hub refuses; path relative to where it was caught. */
class UnsafeTreeEntry extends Error {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {
    super(`unsafe tree entry "${printablePath(path)}": ${problem}`);
  }
}

/** An unsafe entry as the commit's error (a ValidationError naming the path); other errors as they are. */
function unsafeAtRoot(this: void, err: unknown): never {
  if (!(err instanceof UnsafeTreeEntry)) throw err;
  throw new ValidationError(
    `the commit holds an unsafe tree entry "${printablePath(err.path)}": ${err.problem} is not allowed`,
  );
}

/**
 * readEntry for a child of a tree, after checking its name: nothing under a hostile name
 * is read, and the error names the path from here.
 */
async function readChild(
  opts: CommitTreeOptions,
  cache: SubtreeCache,
  child: Entry,
): Promise<SubtreeFiles> {
  const problem = treeNameProblem(child.path);
  if (problem) throw new UnsafeTreeEntry(child.path, problem);
  try {
    return await readEntry(opts, cache, child);
  } catch (err) {
    if (err instanceof UnsafeTreeEntry)
      throw new UnsafeTreeEntry(`${child.path}/${err.path}`, err.problem);
    throw err;
  }
}

/** Files under one entry, paths relative to it ("" is the entry itself). */
async function readEntry(
  opts: CommitTreeOptions,
  cache: SubtreeCache,
  entry: Entry,
): Promise<SubtreeFiles> {
  const { gitdir } = opts;
  if (entry.type === 'commit')
    return {
      files: [],
      rejected: [{ path: '', reason: 'Git submodules are not supported in a fleet repo' }],
    };
  if (entry.mode === MODE_SYMLINK)
    return {
      files: [],
      rejected: [{ path: '', reason: 'symbolic links are not allowed in a fleet repo' }],
    };
  if (entry.type === 'blob') {
    const { blob } = await git.readBlob({ fs, gitdir, oid: entry.oid, cache: opts.cache });
    return {
      files: [['', Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength)]],
      rejected: [],
    };
  }
  const hit = cache.get(entry.oid);
  if (hit) return hit;
  const tree = await treeEntries(opts, entry.oid);
  const files: [string, Buffer][] = [];
  const rejected: RejectedEntry[] = [];
  for (const child of tree) {
    const sub = await readChild(opts, cache, child);
    for (const [path, bytes] of sub.files)
      files.push([path === '' ? child.path : `${child.path}/${path}`, bytes]);
    for (const r of sub.rejected)
      rejected.push({ ...r, path: r.path === '' ? child.path : `${child.path}/${r.path}` });
  }
  const out = { files, rejected };
  cache.set(entry.oid, out);
  return out;
}
