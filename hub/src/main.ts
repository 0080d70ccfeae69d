// `flotilla hub`: parse the config path, build the app, run until SIGTERM/SIGINT.
import { parseArgs } from 'node:util';
import { createLogger, durations, errorMessage, isDnsLabel } from '@flotilla/common';
import { HubApp, realHubParts } from './app.js';
import { loadHubConfig } from './config/load.js';
import type { CliIo } from './cli/io.js';
import { ExitCode } from './cli/io.js';

/** Usage text of `flotilla hub`. */
export const HUB_USAGE = `Usage: flotilla hub --config hub.yaml [--insecure]
       flotilla hub init --identity-dir DIR   (the CA and first administrator, for replicas)

Runs the hub: follows the fleet repo, streams desired state to agents, serves status.
TLS (and per-cluster mTLS for agents) is on by default; --insecure (or "insecure: true"
in hub.yaml) serves plaintext for local development and demos only.
Environment: FLOTILLA_LOG_LEVEL (default info); FLOTILLA_HUB_REPLICA names this replica
when several hubs share one hub.yaml (replicaId; e.g. the pod's name).
`;

/** Runs the hub until a signal; returns the exit code. */
export async function hubCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv[0] === 'init')
    return (await import('./cli/hub-init.js')).hubInitCommand(argv.slice(1), io);
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string', short: 'c' },
      insecure: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(HUB_USAGE);
    return ExitCode.ok;
  }
  if (!values.config) {
    io.stderr.write(`flotilla hub: --config is required\n\n${HUB_USAGE}`);
    return ExitCode.usage;
  }
  const config = await loadHubConfig(values.config, io.env);
  if (values.insecure) config.insecure = true;
  const replica = io.env.FLOTILLA_HUB_REPLICA;
  if (replica) {
    if (!isDnsLabel(replica)) {
      io.stderr.write(
        `flotilla hub: FLOTILLA_HUB_REPLICA must be a DNS label (lower-case letters, digits, "-"), got "${replica}"\n`,
      );
      return ExitCode.usage;
    }
    config.status.replicaId = replica;
  }
  const logger = createLogger({ name: 'hub', level: io.env.FLOTILLA_LOG_LEVEL ?? 'info' });
  const app = new HubApp(config, realHubParts(logger));
  await app.start();
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info({ signal }, 'shutting down');
  // A stuck module must not keep the process past the grace period.
  const force = setTimeout(() => {
    logger.error({ graceMs: durations.shutdownGrace }, 'shutdown took too long, exiting');
    process.exit(ExitCode.error);
  }, durations.shutdownGrace);
  force.unref();
  try {
    await app.stop(durations.shutdownGrace - 1_000);
  } catch (err) {
    logger.error({ err: errorMessage(err) }, 'shutdown failed');
    return ExitCode.error;
  }
  return ExitCode.ok;
}
