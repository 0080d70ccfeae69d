// One error class per condition a test author must tell apart: a missing prerequisite
// (fix the machine), a server that did not start (read its log), a wait that timed out.

/** Stable codes of the test-environment errors. */
export type EnvErrorCode =
  'PREREQUISITE_MISSING' | 'SERVER_START_FAILED' | 'WAIT_TIMEOUT' | 'COMMAND_FAILED';

/** Base class of every error the test environment throws. */
export class EnvError extends Error {
  /** Stable code, for assertions that must not parse messages. */
  readonly code: EnvErrorCode;
  constructor(code: EnvErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A binary, tool or runtime the test needs is absent; the message says how to get it. */
export class PrerequisiteMissingError extends EnvError {
  constructor(
    readonly prerequisite: string,
    readonly howToGet: string,
    detail?: string,
  ) {
    super(
      'PREREQUISITE_MISSING',
      `missing prerequisite ${prerequisite}${detail ? ` (${detail})` : ''}: ${howToGet}`,
    );
  }
}

/** A server process exited early or never became ready; the message carries its log tail. */
export class ServerStartError extends EnvError {
  constructor(
    readonly server: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super('SERVER_START_FAILED', `${server}: ${message}`, options);
  }
}

/** waitFor() gave up; `what` names the condition that never held. */
export class WaitTimeoutError extends EnvError {
  constructor(
    readonly what: string,
    readonly timeoutMs: number,
    options?: ErrorOptions,
  ) {
    const last = options?.cause instanceof Error ? `; last error: ${options.cause.message}` : '';
    super('WAIT_TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what}${last}`, options);
  }
}

/** An external command (git, ...) exited non-zero; the message carries its stderr. */
export class CommandFailedError extends EnvError {
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super('COMMAND_FAILED', `${command} exited with ${exitCode}: ${stderr.trim()}`);
  }
}
