// The hub's own check of every path that comes out of a Git tree, before a file is
// stored, written to a temp dir or rendered. The Git library refuses some hostile names
// while parsing, but a path is only safe because the hub says so: a name such as "..",
// "/etc", ".git" or "a\\..\\b" could otherwise lead a write or a kustomize build out of
// its directory.
import { ValidationError } from '@flotilla/common';

/** Longest name of one path component, bytes (Linux NAME_MAX). */
export const MAX_TREE_NAME_BYTES = 255;
/** Longest repo path, bytes (Linux PATH_MAX). */
export const MAX_TREE_PATH_BYTES = 4096;

// Characters HFS+ ignores in names (git's is_hfs_dotgit): ".g\u200Cit" is ".git" there.
const HFS_IGNORED = /[\u200C-\u200F\u202A-\u202E\u206A-\u206F\uFEFF]/g;
const CONTROL = /[\u0000-\u001F\u007F]/;
const PLAIN_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}$/;

/**
 * Why one path component is not allowed, or undefined when it is: empty, "." or "..",
 * a slash or backslash, a control character (NUL included), too long, or a name a
 * Git client or file system would take for ".git" (any case, trailing dots or spaces,
 * NTFS short name "git~1", HFS+ ignorable characters).
 */
export function treeNameProblem(name: string): string | undefined {
  // Most names: plain characters, not starting with a dot, nothing like "git~1".
  if (PLAIN_NAME.test(name) && !/^git~/i.test(name)) return undefined;
  if (name === '') return 'an empty name';
  if (name === '.' || name === '..') return `a "${name}" component`;
  if (name.includes('/') || name.includes('\\')) return 'a slash or backslash inside a name';
  if (CONTROL.test(name)) return 'a control character (NUL, newline, …) in a name';
  if (Buffer.byteLength(name) > MAX_TREE_NAME_BYTES)
    return `a name longer than ${MAX_TREE_NAME_BYTES} bytes`;
  const hfs = name.replace(HFS_IGNORED, '');
  if (hfs === '.' || hfs === '..') return 'a "." or ".." component (with invisible characters)';
  const ntfs = (hfs.split(':')[0] ?? '').toLowerCase().replace(/[. ]+$/, '');
  if (ntfs === '.git' || /^\.?git~[1-9]$/.test(ntfs)) return 'a ".git" component';
  return undefined;
}

/**
 * Why a repo path ("bundles/web/a.yaml") is not allowed, or undefined when it is: absolute,
 * too long, or a component treeNameProblem refuses.
 */
export function treePathProblem(path: string): string | undefined {
  if (path.startsWith('/')) return 'an absolute path';
  if (Buffer.byteLength(path) > MAX_TREE_PATH_BYTES)
    return `a path longer than ${MAX_TREE_PATH_BYTES} bytes`;
  for (const name of path.split('/')) {
    const problem = treeNameProblem(name);
    if (problem) return problem;
  }
  return undefined;
}

/** Throws a ValidationError naming the path when treePathProblem refuses it. */
export function checkTreePath(path: string, where = 'the fleet repo'): void {
  const problem = treePathProblem(path);
  if (problem)
    throw new ValidationError(
      `unsafe path "${printablePath(path)}" in ${where}: ${problem} is not allowed`,
    );
}

/** A path as it can be shown: control characters escaped, bounded. */
export function printablePath(path: string): string {
  const shown = JSON.stringify(path).slice(1, -1);
  return shown.length > 300 ? `${shown.slice(0, 300)}…` : shown;
}
