// The files of a fleet repo at one revision, held in memory. Render reads only this
// interface, so it works the same on a Git commit (hub) and a local directory
// (`flotilla render --repo DIR`, what a reviewer runs on a pull request).
import { lstat, readdir, readFile, realpath } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { ValidationError } from '@flotilla/common';
import { join } from 'node:path';

/** Top-level directories that declare the fleet (clusters, groups, bundles). */
export const FLEET_ROOTS: readonly string[] = ['clusters', 'clusterGroups', 'bundles'];

/**
 * True for a top-level entry of the fleet root that is read into a tree: every one but
 * hidden ones (.git, .github, …). Files outside FLEET_ROOTS are read so Kustomize bases
 * and components can live anywhere in the fleet repo (`apps/base`); render ignores them
 * unless a bundle refers to them.
 */
export function isReadRoot(name: string): boolean {
  return !name.startsWith('.');
}

/** An entry that exists but cannot be used (symlink, submodule), so render can report it. */
export interface RejectedEntry {
  /** POSIX path relative to the repo root. */
  path: string;
  reason: string;
}

/** A repo's files at one revision: POSIX paths relative to the root → bytes. Immutable. */
export interface RepoTree {
  /** Every regular file's path, sorted (byte order). */
  paths(): readonly string[];
  /** A file's bytes, or undefined when there is no such file. */
  read(path: string): Buffer | undefined;
  /** Entries skipped because they are not regular files. */
  readonly rejected: readonly RejectedEntry[];
}

/** A RepoTree over a Map; what both the Git and the directory readers build. */
export class MapRepoTree implements RepoTree {
  private readonly files: ReadonlyMap<string, Buffer>;
  private readonly sorted: readonly string[];
  readonly rejected: readonly RejectedEntry[];

  constructor(files: ReadonlyMap<string, Buffer>, rejected: readonly RejectedEntry[] = []) {
    this.files = files;
    this.sorted = [...files.keys()].sort(compareBytes);
    this.rejected = rejected;
  }

  /** Builds a tree from path → text, for tests and generated repos. */
  static fromStrings(files: Record<string, string>): MapRepoTree {
    return new MapRepoTree(new Map(Object.entries(files).map(([p, t]) => [p, Buffer.from(t)])));
  }

  paths(): readonly string[] {
    return this.sorted;
  }

  read(path: string): Buffer | undefined {
    return this.files.get(path);
  }
}

/** Byte-order string comparison, independent of locale, so sorting is the same everywhere. */
export function compareBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Options for readDirectoryTree. */
export interface DirectoryTreeOptions {
  /** Top-level entries to read (default: every one isReadRoot accepts). */
  roots?: readonly string[];
  /** The fleet's root directory inside `dir`, normalised (validateFleetPath; default "": `dir` itself). */
  path?: string;
}

/**
 * Reads a local checkout into memory. Symlinks are never followed (they could point
 * outside the repo, and a Git commit would not carry their target's content): they are
 * listed in `rejected` instead.
 */
export async function readDirectoryTree(
  dir: string,
  opts: DirectoryTreeOptions = {},
): Promise<RepoTree> {
  const root = await fleetDirectory(await realpath(dir), opts.path ?? '');
  const files = new Map<string, Buffer>();
  const rejected: RejectedEntry[] = [];
  const tops = opts.roots ?? (await readdir(root)).filter(isReadRoot).sort(compareBytes);
  for (const top of tops) {
    const st = await lstat(join(root, top)).catch(() => undefined);
    if (!st) continue;
    await walk(
      root,
      top,
      st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other',
      files,
      rejected,
    );
  }
  return new MapRepoTree(files, rejected);
}

/**
 * `dir`/`path`, checked one segment at a time: a symlink on the way could lead outside
 * the repository, and a commit would not carry what it points to, so it is refused.
 */
async function fleetDirectory(dir: string, path: string): Promise<string> {
  let at = dir;
  for (const name of path === '' ? [] : path.split('/')) {
    at = join(at, name);
    const st: Stats | undefined = await lstat(at).catch(() => undefined);
    if (!st) throw new ValidationError(`fleet path "${path}" does not exist in ${dir}`);
    if (st.isSymbolicLink())
      throw new ValidationError(`fleet path "${path}" goes through a symbolic link (${at})`);
    if (!st.isDirectory())
      throw new ValidationError(`fleet path "${path}" is not a directory (${at})`);
  }
  return at;
}

type EntryKind = 'dir' | 'file' | 'symlink' | 'other';

async function walk(
  root: string,
  rel: string,
  kind: EntryKind,
  files: Map<string, Buffer>,
  rejected: RejectedEntry[],
): Promise<void> {
  switch (kind) {
    case 'file':
      files.set(rel, await readFile(join(root, rel)));
      return;
    case 'symlink':
      rejected.push({ path: rel, reason: 'symbolic links are not allowed in a fleet repo' });
      return;
    case 'other':
      rejected.push({ path: rel, reason: 'not a regular file or directory' });
      return;
    case 'dir':
      for (const e of await readdir(join(root, rel), { withFileTypes: true })) {
        const k: EntryKind = e.isSymbolicLink()
          ? 'symlink'
          : e.isDirectory()
            ? 'dir'
            : e.isFile()
              ? 'file'
              : 'other';
        await walk(root, `${rel}/${e.name}`, k, files, rejected);
      }
  }
}
