// Test helpers of the CLI's tests (not used by the CLI itself).
import type { CliIo } from './io.js';

/** A CliIo that keeps what a command writes: `out.stdout`, `out.stderr`. */
export function captureIo(
  env: NodeJS.ProcessEnv = {},
  cwd = '/',
): {
  out: { stdout: string; stderr: string };
  cli: CliIo;
} {
  const out = { stdout: '', stderr: '' };
  const cli: CliIo = {
    stdout: { write: (t: string) => (out.stdout += t) },
    stderr: { write: (t: string) => (out.stderr += t) },
    env,
    cwd,
  };
  return { out, cli };
}
