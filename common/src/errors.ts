// Typed errors with stable codes. A code never changes once released: clients, events
// and the HTTP API switch on it instead of parsing messages.

/** Stable error codes, serialized at every wire (gRPC status details, events, HTTP bodies). */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'VALIDATION_FAILED'
  | 'NOT_FOUND'
  | 'UNAUTHENTICATED'
  | 'PERMISSION_DENIED'
  | 'UNAVAILABLE'
  | 'CONFLICT'
  | 'TOO_LARGE'
  | 'INTERNAL';

/** JSON form of an error, as sent over HTTP and in events. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  retryable: boolean;
  details?: Record<string, unknown>;
}

/** Base class: every error Flotilla raises on purpose has a code and says if a retry may help. */
export class FlotillaError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    opts: { retryable?: boolean; cause?: unknown; details?: Record<string, unknown> } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = opts.retryable ?? false;
    this.details = opts.details;
  }

  toJSON(): ErrorBody {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** A configuration value is missing or wrong; the message names the field. */
export class ConfigError extends FlotillaError {
  readonly field: string;
  constructor(field: string, problem: string, opts: { file?: string; cause?: unknown } = {}) {
    const where = opts.file ? `${opts.file}: ` : '';
    super('CONFIG_INVALID', `${where}${field}: ${problem}`, {
      cause: opts.cause,
      details: { field, ...(opts.file ? { file: opts.file } : {}) },
    });
    this.field = field;
  }
}

/** Input (a fleet repo file, a manifest, a query) is invalid; names the file and line when known. */
export class ValidationError extends FlotillaError {
  readonly file: string | undefined;
  readonly line: number | undefined;
  constructor(message: string, opts: { file?: string; line?: number; cause?: unknown } = {}) {
    const where = opts.file ? `${opts.file}${opts.line ? `:${opts.line}` : ''}: ` : '';
    super('VALIDATION_FAILED', `${where}${message}`, {
      cause: opts.cause,
      details: {
        ...(opts.file ? { file: opts.file } : {}),
        ...(opts.line ? { line: opts.line } : {}),
      },
    });
    this.file = opts.file;
    this.line = opts.line;
  }
}

/** A named thing (cluster, bundle, source) does not exist. */
export class NotFoundError extends FlotillaError {
  constructor(kind: string, name: string) {
    super('NOT_FOUND', `${kind} "${name}" not found`, { details: { kind, name } });
  }
}

/** A dependency (hub, NATS, Git server, Kubernetes API) cannot be reached right now. */
export class UnavailableError extends FlotillaError {
  constructor(what: string, opts: { cause?: unknown } = {}) {
    const reason = opts.cause instanceof Error ? `: ${opts.cause.message}` : '';
    super('UNAVAILABLE', `${what} is unavailable${reason}`, { retryable: true, cause: opts.cause });
  }
}

/** Output exceeds a configured limit. */
export class TooLargeError extends FlotillaError {
  constructor(what: string, size: number, limit: number) {
    super('TOO_LARGE', `${what} is ${size} bytes, over the limit of ${limit} bytes`, {
      details: { size, limit },
    });
  }
}

/** True when retrying the failed operation may succeed. Unknown errors count as retryable. */
export function isRetryable(err: unknown): boolean {
  return err instanceof FlotillaError ? err.retryable : true;
}

/** A one-line message for any thrown value, for logs and status fields. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
