// Where the fleet lives inside its repository: a source's `path` (`flotilla render/diff
// --path`). The renderer only ever sees that subtree, with paths relative to it, so every
// check it makes (paths that leave the repository, symlinks, size limits) holds against
// the subtree: nothing outside `path` can be read by a bundle.
import { posix } from 'node:path';
import { ConfigError, FlotillaError } from '@flotilla/common';

/**
 * Checks a fleet path and returns it normalised: "" for the repository root (the
 * default), otherwise "a/b" (no leading or trailing "/"). Throws ConfigError naming `field`.
 */
export function validateFleetPath(path: unknown, field: string): string {
  if (path === undefined || path === null) return '';
  if (typeof path !== 'string' || path === '')
    throw new ConfigError(
      field,
      'must be a non-empty string such as "deploy/fleet" (leave it out for the repository root)',
    );
  const bad = (problem: string): never => {
    throw new ConfigError(field, `"${path}" ${problem}`);
  };
  if (path.startsWith('/')) bad('must be relative to the repository root (no leading "/")');
  if (path.includes('\\') || path.includes('\0')) bad('must be a POSIX path with "/" separators');
  const trimmed = path.endsWith('/') ? path.slice(0, -1) : path;
  if (trimmed === '' || trimmed === '.') return '';
  const segments = trimmed.split('/');
  if (segments.includes('..')) bad('must stay inside the repository (no ".." segments)');
  if (segments.some((s) => s === '' || s === '.'))
    bad(`must be normalised (no empty or "." segments): write "${posix.normalize(trimmed)}"`);
  if (segments.includes('.git')) bad('must not point into .git');
  return trimmed;
}

/** The fleet's directory is missing (or is not a directory) at a commit. Retryable: a later commit may restore it. */
export class FleetPathMissingError extends FlotillaError {
  constructor(path: string, revision: string, problem = 'does not exist') {
    super('NOT_FOUND', `fleet path "${path}" ${problem} at commit ${revision}`, {
      retryable: true,
      details: { path, revision },
    });
  }
}
