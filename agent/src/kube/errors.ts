// Typed errors of the Kubernetes client. The HTTP status and the server's Status
// message travel with the error, so the apply engine can report the server's own words
// (a strict-validation message, a field-manager conflict) without parsing strings.
import { FlotillaError } from '@flotilla/common';
import type { ErrorCode } from '@flotilla/common';

/** Status reason the API server gives with an error ("NotFound", "Conflict", "Invalid", ...). */
export type KubeReason = string;

function codeFor(status: number): ErrorCode {
  if (status === 404) return 'NOT_FOUND';
  if (status === 409) return 'CONFLICT';
  if (status === 400 || status === 422) return 'VALIDATION_FAILED';
  if (status === 401 || status === 403) return 'UNAUTHENTICATED';
  if (status === 429 || status >= 500) return 'UNAVAILABLE';
  return 'INTERNAL';
}

/** True for statuses a retry may fix: throttling and server errors. */
export function isRetryableStatus(status: number): boolean {
  return status === 429 || status >= 500;
}

// kube-apiserver answers a server-side apply whose body has a field the schema does not
// declare with HTTP 500 and no reason (kubernetes/kubernetes#122480, #139253), although
// it is the client's mistake. Retrying cannot help, so it is classified as invalid input.
const SSA_SCHEMA_ERROR = 'failed to create typed patch object';

/** True when a 500 is really kube-apiserver's SSA "field not declared in schema" input error. */
export function isSsaSchemaError(status: number, message: string): boolean {
  return status === 500 && message.startsWith(SSA_SCHEMA_ERROR);
}

/** The API server answered with an error status. */
export class KubeApiError extends FlotillaError {
  /** HTTP status code. */
  readonly status: number;
  /** Status.reason from the body, "" when absent. */
  readonly reason: KubeReason;

  constructor(
    method: string,
    path: string,
    status: number,
    reason: KubeReason,
    serverMessage: string,
  ) {
    const schemaError = isSsaSchemaError(status, serverMessage);
    super(
      schemaError ? 'VALIDATION_FAILED' : codeFor(status),
      serverMessage || `${method} ${path}: HTTP ${status}`,
      {
        retryable: !schemaError && isRetryableStatus(status),
        details: { status, reason, method, path },
      },
    );
    this.status = status;
    this.reason = reason;
  }
}

/** The API server could not be reached (connection refused, reset, timeout). */
export class KubeConnectionError extends FlotillaError {
  constructor(method: string, path: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super('UNAVAILABLE', `Kubernetes API unreachable (${method} ${path}): ${why}`, {
      retryable: true,
      cause,
    });
  }
}

/** No API resource serves this apiVersion/kind (a CRD not installed yet, a typo). */
export class UnknownKindError extends FlotillaError {
  constructor(apiVersion: string, kind: string) {
    super('NOT_FOUND', `no matches for kind "${kind}" in version "${apiVersion}"`, {
      retryable: true,
      details: { apiVersion, kind },
    });
  }
}

/** True when err is a KubeApiError with this HTTP status. */
export function hasStatus(err: unknown, status: number): boolean {
  return err instanceof KubeApiError && err.status === status;
}
