// Reads a commit's tree straight from the object store (no checkout), so a snapshot is
// exactly the commit's content whatever happens to the work tree.
import fs from 'node:fs';
import git from 'isomorphic-git';
import { FLEET_ROOTS, MapRepoTree } from './tree.js';
import type { RejectedEntry, RepoTree } from './tree.js';

/** Where to read a commit from. */
export interface CommitTreeOptions {
  /** The repository's .git directory (or a bare repository). */
  gitdir: string;
  /** Commit SHA. */
  commit: string;
  /** isomorphic-git cache object, shared with the fetches (holds parsed pack indexes). */
  cache: object;
  /** Top-level directories to read (default FLEET_ROOTS). */
  roots?: readonly string[];
}

const MODE_SYMLINK = '120000';

/** Loads the files of a commit under the fleet roots into memory. */
export async function readCommitTree(opts: CommitTreeOptions): Promise<RepoTree> {
  const files = new Map<string, Buffer>();
  const rejected: RejectedEntry[] = [];
  const top = await git.readTree({ fs, gitdir: opts.gitdir, oid: opts.commit, cache: opts.cache });
  const roots = new Set(opts.roots ?? FLEET_ROOTS);
  for (const entry of top.tree) {
    if (!roots.has(entry.path)) continue;
    await visit(opts, entry, entry.path, files, rejected);
  }
  return new MapRepoTree(files, rejected);
}

async function visit(
  opts: CommitTreeOptions,
  entry: { mode: string; oid: string; type: 'commit' | 'blob' | 'tree' },
  path: string,
  files: Map<string, Buffer>,
  rejected: RejectedEntry[],
): Promise<void> {
  const { gitdir, cache } = opts;
  if (entry.type === 'commit') {
    rejected.push({ path, reason: 'Git submodules are not supported in a fleet repo' });
  } else if (entry.mode === MODE_SYMLINK) {
    rejected.push({ path, reason: 'symbolic links are not allowed in a fleet repo' });
  } else if (entry.type === 'blob') {
    const { blob } = await git.readBlob({ fs, gitdir, oid: entry.oid, cache });
    files.set(path, Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength));
  } else {
    const { tree } = await git.readTree({ fs, gitdir, oid: entry.oid, cache });
    for (const child of tree) await visit(opts, child, `${path}/${child.path}`, files, rejected);
  }
}
