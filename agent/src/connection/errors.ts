// Errors of the hub connection, with stable codes (common's ErrorCode).
import { FlotillaError } from '@flotilla/common';

/** A desired state from the hub is malformed: bad chunks, bad gzip, wrong digest or cluster. Never applied. */
export class DesiredStateRejectedError extends FlotillaError {
  constructor(message: string, opts: { cause?: unknown } = {}) {
    super('VALIDATION_FAILED', `desired state rejected: ${message}`, { cause: opts.cause });
  }
}
