// Structured logging. The logger is always passed in (never a module global) and the
// field names below are the only ones used for these concepts, so logs can be queried.
import { pino } from 'pino';
import type { Logger } from 'pino';

export type { Logger } from 'pino';

/** Constant log field names. */
export const LogFields = {
  cluster: 'cluster',
  bundle: 'bundle',
  revision: 'revision',
  digest: 'digest',
  generation: 'generation',
  session: 'session',
  source: 'source',
  component: 'component',
  durationMs: 'durationMs',
  err: 'err',
} as const;

/** Paths pino censors wherever they appear, so credentials never reach a log line. */
export const REDACT_PATHS = [
  'token',
  'password',
  'authorization',
  '*.token',
  '*.password',
  '*.authorization',
  '*.headers.authorization',
  'config.auth',
  'config.*.auth',
];

/** Options for createLogger. */
export interface LoggerOptions {
  /** pino level (default "info", or FLOTILLA_LOG_LEVEL read by the caller's config). */
  level?: string;
  /** Component name added to every line, e.g. "hub" or "agent". */
  name: string;
  /** Where lines go (default stdout). */
  destination?: NodeJS.WritableStream;
}

/** Creates the process logger: JSON lines, ISO timestamps, secrets redacted. */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level ?? 'info',
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? process.stdout,
  );
}

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
