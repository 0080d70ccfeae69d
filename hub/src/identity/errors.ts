// Identity errors. Each maps to one gRPC status (see service.ts), so an agent or the
// CLI learns exactly what was wrong without the hub saying anything secret.
import { FlotillaError } from '@flotilla/common';

/** A bootstrap token is unknown, expired, already used, or for another cluster. Never says which secret. */
export class BootstrapTokenError extends FlotillaError {
  constructor(reason: 'unknown' | 'expired' | 'used' | 'wrong-cluster' | 'malformed') {
    const why = {
      unknown: 'is not known to this hub',
      expired: 'has expired',
      used: 'was already used (tokens are single-use)',
      'wrong-cluster': 'was issued for another cluster',
      malformed: 'is malformed',
    }[reason];
    super('UNAUTHENTICATED', `bootstrap token ${why}`, { details: { reason } });
  }
}

/** The caller's certificate is missing, revoked, or does not allow what it asked. */
export class IdentityRefusedError extends FlotillaError {
  constructor(
    message: string,
    /** true: known peer asking for something it may not have (PERMISSION_DENIED); false: no valid identity. */
    readonly forbidden = false,
  ) {
    super('UNAUTHENTICATED', message);
  }
}

/** A cluster asked for certificates faster than renewal needs (RESOURCE_EXHAUSTED); retry later. */
export class RenewalTooSoonError extends FlotillaError {
  constructor(cluster: string, retryInMs: number) {
    super(
      'UNAVAILABLE',
      `cluster "${cluster}" renewed its certificate moments ago: retry in ${Math.ceil(retryInMs / 1000)} s`,
      { retryable: true },
    );
  }
}
