// Server processes of the test environment. Three promises hold whatever happens to
// the test process: stop() kills a child; a normal or crashing exit SIGKILLs every
// child still tracked; and a watchdog (a shell reading a pipe from this process) kills
// them when this process dies without running any handler (SIGKILL, OOM, a runner
// timeout). Children never inherit stdio: their output goes to a log file.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { ServerStartError } from './errors.js';

/** A running server process whose output goes to `logFile`. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  /** True once the process has ended. */
  isRunning(): boolean;
  /**
   * SIGTERM, then SIGKILL after `graceMs` (default 3 000 ms); 0 sends SIGKILL at once, as
   * a crash would end it. Resolves once the process ended.
   */
  stop(graceMs?: number): Promise<void>;
  /** The last `lines` lines of the log, for error messages. */
  logTail(lines?: number): string;
}

const live = new Set<ChildProcess>();
let watchdog: ChildProcess | undefined;
let exitHookInstalled = false;

const dirsToRemove = new Set<string>();

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' also runs after an uncaught exception; only synchronous work is possible here.
  // Children first, so none is still writing into a directory being removed.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    if (process.env.FLOTILLA_KEEP_TMP === '1') return;
    for (const dir of dirsToRemove) rmSync(dir, { recursive: true, force: true });
  });
}

// The watchdog reads "+pid" / "-pid" / "rDIR" lines; on EOF (this process is gone,
// however it died) it SIGKILLs the pids still listed and removes the dirs. It is
// unref'd so it never keeps Node alive.
const WATCHDOG_SCRIPT = `
pids=" "
dirs=""
while IFS= read -r line; do
  case "$line" in
    +*) pids="$pids\${line#+} " ;;
    -*) pids=$(printf '%s' "$pids" | sed "s/ \${line#-} / /") ;;
    r*) dirs="$dirs
\${line#r}" ;;
  esac
done
for p in $pids; do kill -9 "$p" 2>/dev/null; done
printf '%s\\n' "$dirs" | while IFS= read -r d; do [ -n "$d" ] && rm -rf -- "$d"; done
`;

function tellWatchdog(line: string): void {
  if (!watchdog) {
    watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    watchdog.on('error', () => {
      // Without /bin/sh only the exit hook protects us; that is still the common case.
      watchdog = undefined;
    });
    watchdog.unref();
    (watchdog.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }
  watchdog.stdin?.write(`${line}\n`);
}

/** Options of spawnServer(). */
export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  logFile: string;
}

/** Starts `command` with output appended to `options.logFile`, tracked for cleanup. */
export function spawnServer(
  name: string,
  command: string,
  args: string[],
  options: SpawnOptions,
): ManagedProcess {
  installExitHook();
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd); // the child holds its own copy
  }
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    const done = (result: number | string): void => {
      if (!running) return;
      running = false;
      live.delete(child);
      if (child.pid) tellWatchdog(`-${child.pid}`);
      resolve(result);
    };
    child.once('exit', (code, signal) => done(code ?? signal ?? 'unknown'));
    // ENOENT/EACCES arrive as 'error' without 'exit'.
    child.once('error', (err) => done(`spawn error: ${err.message}`));
  });
  if (child.pid === undefined) {
    throw new ServerStartError(name, `could not start ${command}`);
  }
  live.add(child);
  tellWatchdog(`+${child.pid}`);
  const pid = child.pid;

  const logTail = (lines = 30): string => {
    try {
      return readFileSync(options.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  };

  const stop = async (graceMs = 3_000): Promise<void> => {
    if (!running) return;
    child.kill(graceMs > 0 ? 'SIGTERM' : 'SIGKILL');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };

  return { name, pid, logFile: options.logFile, exited, isRunning: () => running, stop, logTail };
}

/**
 * Runs `ready` until it resolves, racing it against the exit of any of `procs`. An early
 * exit becomes a ServerStartError with that process's log tail; any other failure (a
 * readiness timeout) is reported with the log of `procs[0]`. The signal passed to
 * `ready` aborts once the race is decided, so no poller outlives a failed start.
 */
export async function untilReadyOrExit<T>(
  procs: ManagedProcess[],
  ready: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const abort = new AbortController();
  const early = procs.map((proc) =>
    proc.exited.then((code) => {
      throw new ServerStartError(
        proc.name,
        `exited (${code}) before it was ready; log ${proc.logFile}:\n${proc.logTail()}`,
      );
    }),
  );
  try {
    return await Promise.race([ready(abort.signal), ...early]);
  } catch (err) {
    const main = procs[0];
    if (err instanceof ServerStartError || !main) throw err;
    throw new ServerStartError(
      main.name,
      `not ready: ${(err as Error).message}; log ${main.logFile}:\n${main.logTail()}`,
      { cause: err },
    );
  } finally {
    abort.abort(new Error('readiness race decided'));
    // The race is settled; a later exit is the caller's business.
    for (const e of early) e.catch(() => undefined);
  }
}

/**
 * Removes `dir` when the test process exits, for state that must outlive stop() (a NATS
 * store across a simulated outage). FLOTILLA_KEEP_TMP=1 keeps it for debugging.
 */
export function removeOnExit(dir: string): void {
  installExitHook();
  dirsToRemove.add(dir);
  if (process.env.FLOTILLA_KEEP_TMP !== '1' && !dir.includes('\n')) tellWatchdog(`r${dir}`);
}
