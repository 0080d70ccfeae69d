// What a subcommand gets instead of touching process globals, so tests can run it.
import { errorMessage, parseDuration } from '@flotilla/common';

/** Streams and environment of one CLI invocation. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** Exit codes, kubectl-style. */
export const ExitCode = { ok: 0, error: 1, usage: 2 } as const;

/** Bad command line: printed with a hint and exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The real process streams and environment. */
export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() };
}

/** A duration flag's value in ms ("5m", "90d"); a bad one is a UsageError naming the flag. */
export function durationFlag(text: string, flag: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new UsageError(`${flag}: ${errorMessage(err)}`);
  }
}
