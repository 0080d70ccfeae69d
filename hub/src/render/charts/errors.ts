// Why a chart could not be had. The renderer turns each into an error of the bundle
// (file:line of its helm source), so the bundle is Failed with this reason and its last
// good rendering keeps being served.
import { FlotillaError } from '@flotilla/common';

/** Codes of a failed chart fetch: unreachable, refused, missing, too large, or malformed. */
export type ChartFetchCode =
  'UNAVAILABLE' | 'UNAUTHENTICATED' | 'NOT_FOUND' | 'TOO_LARGE' | 'VALIDATION_FAILED';

/** A chart repository or registry could not give a chart; retryable when it may come back. */
export class ChartFetchError extends FlotillaError {
  constructor(code: ChartFetchCode, message: string, cause?: unknown) {
    super(code, message, {
      retryable: code === 'UNAVAILABLE',
      ...(cause !== undefined ? { cause } : {}),
    });
  }
}
