// How a Git failure is reported: isomorphic-git's errors mapped onto our typed errors
// (by their stable `code`, never by message), with the source's URL minus credentials.
import { FlotillaError, UnavailableError } from '@flotilla/common';

/** Drops user:password@ from a URL so it can appear in messages. */
export function redactUrl(url: string): string {
  return url.replace(/^(https?:\/\/)[^@/]*@/, '$1');
}

/** Maps isomorphic-git errors onto our typed errors (by their stable `code`, not by message). */
export function classify(err: unknown, source: string, ref: string, url: string): FlotillaError {
  const where = `source "${source}" (${redactUrl(url)})`;
  if (err instanceof FlotillaError) {
    return new FlotillaError(err.code, `${where}: ${err.message}`, {
      cause: err,
      retryable: err.retryable,
      ...(err.details ? { details: err.details } : {}),
    });
  }
  const e = err as { code?: string; data?: { statusCode?: number } };
  if (e.code === 'HttpError' && (e.data?.statusCode === 401 || e.data?.statusCode === 403)) {
    return new FlotillaError(
      'UNAUTHENTICATED',
      `${where}: authentication failed (HTTP ${e.data.statusCode})`,
      { cause: err },
    );
  }
  if (e.code === 'NotFoundError') {
    return new FlotillaError('NOT_FOUND', `${where}: ${ref} not found`, {
      cause: err,
      retryable: true,
    });
  }
  if (e.code === 'HttpError' && e.data?.statusCode === 404) {
    return new FlotillaError('NOT_FOUND', `${where}: repository not found (HTTP 404)`, {
      cause: err,
      retryable: true,
    });
  }
  return new UnavailableError(`Git server for ${where}`, { cause: err });
}
