// Reads the fleet files of one revision of a local Git repository with the git CLI,
// for `flotilla diff`. The git CLI understands every revision syntax a reviewer types
// (HEAD~1, origin/main, a short SHA, a tag), works on worktrees and partial clones, and
// reads objects straight from the store: the work tree is never touched.
import { execFile, spawn } from 'node:child_process';
import { MapRepoTree } from '../source/index.js';
import type { RejectedEntry, RepoTree } from '../source/index.js';
import { FleetPathMissingError, isReadRoot } from '../source/index.js';

/** Largest `git ls-tree` / blob output read (256 MiB): a fleet repo is much smaller. */
const MAX_GIT_OUTPUT = 256 * 1024 * 1024;

function git(repo: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      ['-C', repo, ...args],
      { maxBuffer: MAX_GIT_OUTPUT, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err)
          reject(
            new Error(stderr.trim().split('\n').slice(-2).join(' ') || err.message, { cause: err }),
          );
        else resolve(stdout);
      },
    );
  });
}

/** The commit SHA a revision names; throws an Error with git's message when it names none. */
export async function resolveRevision(repo: string, rev: string): Promise<string> {
  if (rev.startsWith('-')) throw new Error(`"${rev}" is not a revision`);
  const sha = (
    await git(repo, [
      'rev-parse',
      '--verify',
      '--quiet',
      '--end-of-options',
      `${rev}^{commit}`,
    ]).catch(() => '')
  ).trim();
  if (sha === '') throw new Error(`"${rev}" is not a commit in ${repo}`);
  return sha;
}

/**
 * The files of a commit (symlinks and submodules listed as rejected, like the hub);
 * with `path` (normalised, validateFleetPath), those under that directory, relative to it.
 */
export async function readRevisionTree(repo: string, commit: string, path = ''): Promise<RepoTree> {
  if (path !== '') {
    // Git resolves commit:path inside the commit's tree and never follows a symlink on the way.
    const type = (await git(repo, ['cat-file', '-t', `${commit}:${path}`]).catch(() => '')).trim();
    if (type === '') throw new FleetPathMissingError(path, commit);
    if (type !== 'tree') throw new FleetPathMissingError(path, commit, 'is not a directory');
  }
  const listing = await git(repo, [
    'ls-tree',
    '-r',
    '-z',
    '--full-tree',
    path === '' ? commit : `${commit}:${path}`,
  ]);
  const blobs: { path: string; oid: string }[] = [];
  const rejected: RejectedEntry[] = [];
  for (const entry of listing.split('\0')) {
    if (entry === '') continue;
    const tab = entry.indexOf('\t');
    const [mode, type, oid] = entry.slice(0, tab).split(' ') as [string, string, string];
    const path = entry.slice(tab + 1);
    // Like the hub: everything but hidden top-level entries.
    if (!isReadRoot(path.split('/')[0] as string)) continue;
    if (type === 'commit')
      rejected.push({ path, reason: 'Git submodules are not supported in a fleet repo' });
    else if (mode === '120000')
      rejected.push({ path, reason: 'symbolic links are not allowed in a fleet repo' });
    else if (type === 'blob') blobs.push({ path, oid });
  }
  const contents = await catBlobs(
    repo,
    blobs.map((b) => b.oid),
  );
  return new MapRepoTree(new Map(blobs.map((b, i) => [b.path, contents[i] as Buffer])), rejected);
}

// One `git cat-file --batch` for all blobs: one process instead of one per file.
function catBlobs(repo: string, oids: readonly string[]): Promise<Buffer[]> {
  if (oids.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['-C', repo, 'cat-file', '--batch'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`git cat-file failed: ${stderr.trim()}`));
      const out = Buffer.concat(chunks);
      const blobs: Buffer[] = [];
      let pos = 0;
      for (let i = 0; i < oids.length; i++) {
        const nl = out.indexOf(0x0a, pos);
        const size = Number(out.subarray(pos, nl).toString().split(' ')[2]);
        if (!Number.isFinite(size))
          return reject(new Error(`git cat-file: unexpected output for ${oids[i]}`));
        blobs.push(out.subarray(nl + 1, nl + 1 + size));
        pos = nl + 1 + size + 1;
      }
      resolve(blobs);
    });
    child.stdin.end(`${oids.join('\n')}\n`);
  });
}
