// Names that travel in NATS subjects, label values and file names must be safe there.
import { ValidationError } from './errors.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Throws unless name is a DNS-1123 label (lower-case alphanumerics and '-', ≤ 63 chars). */
export function assertDnsLabel(name: unknown, what: string): asserts name is string {
  if (typeof name !== 'string' || name.length > 63 || !DNS_LABEL.test(name)) {
    throw new ValidationError(
      `${what} "${String(name)}" is not a valid name (lower-case letters, digits and '-', at most 63 characters)`,
    );
  }
}

/** True when name is a DNS-1123 label. */
export function isDnsLabel(name: string): boolean {
  return name.length <= 63 && DNS_LABEL.test(name);
}
