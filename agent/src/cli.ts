// runAgentCli: `flotilla-agent ...` and `flotilla agent ...` both end here. Parses and
// validates config once, runs the app until SIGTERM/SIGINT (or the given signal), and
// returns an exit code instead of exiting, so the hub's CLI can delegate to it.
import { ConfigError, createLogger, sleep } from '@flotilla/common';
import { AgentApp } from './app.js';
import { compileConfig } from './config/config.js';
import { USAGE, parseAgentArgs } from './config/options.js';
import { agentVersion } from './config/version.js';
import { applyAgentV8Flags } from './node-flags.js';
import { reportMemoryOnSignal } from './report/memory-report.js';

/** Options of runAgentCli, for embedding and tests. */
export interface RunAgentOptions {
  /** Environment for flag fallbacks (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Stops the agent when aborted, like SIGTERM. */
  signal?: AbortSignal;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

function untilStopped(signal: AbortSignal | undefined): Promise<string> {
  return new Promise((resolve) => {
    const done = (why: string): void => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      resolve(why);
    };
    const onTerm = (): void => done('SIGTERM');
    const onInt = (): void => done('SIGINT');
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onInt);
    if (signal?.aborted) done('aborted');
    signal?.addEventListener('abort', () => done('aborted'), { once: true });
  });
}

/** Runs the agent with command-line arguments (without node and script); resolves to the exit code (0 ok, 1 failure, 2 usage). */
export async function runAgentCli(argv: string[], opts: RunAgentOptions = {}): Promise<number> {
  // `flotilla agent` reaches the agent here, not through main.ts: the process's V8 flags are set here too.
  applyAgentV8Flags(opts.env ?? process.env);
  reportMemoryOnSignal(opts.env ?? process.env);
  const stdout = opts.stdout ?? process.stdout;
  const stderr = opts.stderr ?? process.stderr;
  let config;
  try {
    const options = parseAgentArgs(argv, opts.env ?? process.env);
    if (options.help) {
      stdout.write(USAGE);
      return 0;
    }
    config = compileConfig(options, agentVersion());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    stderr.write(`flotilla-agent: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  const logger = createLogger({ name: 'agent', level: config.logLevel, destination: stdout });
  const app = new AgentApp(config, logger);
  const stopped = untilStopped(opts.signal);
  try {
    await app.start();
  } catch (err) {
    logger.fatal({ err }, 'agent failed to start');
    await app.stop(1_000);
    return err instanceof ConfigError ? 2 : 1;
  }
  logger.info({ signal: await stopped }, 'shutting down');
  // The grace timer is cancelled once stop() wins, so it never holds the process open.
  const grace = new AbortController();
  const clean = await Promise.race([
    app.stop().then(() => true),
    sleep(config.shutdownGraceMs, grace.signal).then(() => false),
  ]);
  grace.abort();
  if (!clean) logger.warn({ graceMs: config.shutdownGraceMs }, 'shutdown grace period exceeded');
  return clean ? 0 : 1;
}
