// Process warnings a dependency raises that an operator cannot act on. Only these are
// dropped; every other warning (and every other deprecation) is printed as Node prints it.

/**
 * DEP0123: grpc-js passes an IP address target as the TLS server name, which Node flags
 * on every connection ("Setting the TLS ServerName to an IP address is not permitted by
 * RFC 6066"). The certificate is still checked against the IP address.
 */
export const QUIET_WARNING_CODES: readonly string[] = ['DEP0123'];

type EmitWarning = typeof process.emitWarning;
let installed = false;

function codeOf(args: unknown[]): string | undefined {
  const [warning, typeOrOptions, code] = args;
  if (warning instanceof Error) {
    const own = (warning as Error & { code?: unknown }).code;
    if (typeof own === 'string') return own;
  }
  if (typeof typeOrOptions === 'object' && typeOrOptions !== null)
    return (typeOrOptions as { code?: string }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Drops the warnings in QUIET_WARNING_CODES from this process's output; call once at
 * start in a program's entry point (not in a library). Idempotent.
 */
export function quietDependencyWarnings(codes: readonly string[] = QUIET_WARNING_CODES): void {
  if (installed) return;
  installed = true;
  const emit: EmitWarning = process.emitWarning.bind(process);
  process.emitWarning = ((...args: unknown[]) => {
    const code = codeOf(args);
    if (code !== undefined && codes.includes(code)) return;
    (emit as (...a: unknown[]) => void)(...args);
  }) as EmitWarning;
}
