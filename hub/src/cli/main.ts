#!/usr/bin/env node
// `flotilla`: the one command users learn. Each subcommand lives in its own module;
// this file only dispatches and turns errors into messages and exit codes.
import './process-flags.js'; // first: `flotilla hub|agent` set their V8 flags before the rest loads
import { readFileSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { errorMessage, quietDependencyWarnings } from '@flotilla/common';
import { ExitCode, UsageError, processIo } from './io.js';
import type { CliIo } from './io.js';

/** Top-level usage text. */
export const USAGE = `Usage: flotilla <command> [options]

Commands:
  hub      run the hub (--config hub.yaml)
  renderer run kustomize and helm for the hub as another user (render.remote); certs: its TLS material
  agent    run the agent in a cluster
  render   render a fleet repo locally and print each cluster's desired state
  diff     show which clusters and objects a change between two revisions touches
  status   show the fleet's status from a hub
  get      list clusters, bundles or deployments (-l selector, -o table|wide|json|yaml)
  describe show one cluster in detail (describe cluster NAME)
  drift    what drifted, on which fields, changed by whom (--since 24h)
  history  what happened, newest first: applies, drift, health, agent sessions (--cluster C --since 24h)
  watch    follow status changes as they happen
  wait     wait until clusters run a revision (--for revision=SHA) or a rollout completes (--for rollout=BUNDLE@SHA)
  rollout  progressive rollouts: list, status, history, approve, pause, resume, abort, retry
  cluster  add, revoke or list clusters' identities (add issues a bootstrap token and agent manifests)
  token    create, list or revoke API tokens for reading fleet status (dashboards, CI)
  admin    add, revoke or list administrators: a short-lived certificate per person
  nats     init: create NATS decentralized-auth material (server config, hub credentials)
  version  print the version
  help     show this help

Run "flotilla <command> --help" for a command's options.
`;

/** The hub package's version. */
export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

type Command = (argv: string[], io: CliIo) => Promise<number>;

// The agent is loaded on demand by a computed specifier: the hub's CLI must work where
// the agent package (Kubernetes client and all) is not built; then it is a clear error.
async function lazy(specifier: string, exportName: string, what: string): Promise<Command> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(specifier)) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`the ${what} is not available in this build (${errorMessage(err)})`);
  }
  const fn = mod[exportName];
  if (typeof fn !== 'function')
    throw new Error(
      `the ${what} is not available in this build (${specifier} has no ${exportName})`,
    );
  return (argv, io) =>
    Promise.resolve((fn as (a: string[], i: CliIo) => Promise<number> | number)(argv, io));
}

// Each command's module is loaded only when it runs: `flotilla agent` then holds the
// agent's modules alone (not the renderer's, Git's or the API client's), and `flotilla get`
// starts without loading the hub.
const COMMANDS: Record<string, () => Promise<Command>> = {
  hub: async () => (await import('../main.js')).hubCommand,
  renderer: async () => (await import('./renderer.js')).rendererCommand,
  agent: async () => {
    const run = await lazy('@flotilla/agent', 'runAgentCli', 'agent command');
    return (argv) => run(argv, processIo());
  },
  render: async () => (await import('./render.js')).renderCommand,
  diff: async () => (await import('./diff.js')).diffCommand,
  status: async () => (await import('./status.js')).statusCommand,
  get: async () => (await import('./fleet.js')).getCommand,
  describe: async () => (await import('./fleet.js')).describeCommand,
  drift: async () => (await import('./fleet.js')).driftCommand,
  history: async () => (await import('./history.js')).historyCommand,
  watch: async () => (await import('./wait.js')).watchCommand,
  wait: async () => (await import('./wait.js')).waitCommand,
  rollout: async () => (await import('./rollout.js')).rolloutCommand,
  cluster: async () => (await import('./cluster.js')).clusterCommand,
  token: async () => (await import('./token.js')).tokenCommand,
  admin: async () => (await import('./admin.js')).adminCommand,
  nats: async () => (await import('./nats-init.js')).natsCommand,
};

/** Runs the CLI with argv (without node and script); returns the exit code. */
export async function runCli(argv: string[], io: CliIo = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    io.stderr.write(USAGE);
    return ExitCode.usage;
  }
  if (name === 'help' || name === '--help' || name === '-h') {
    io.stdout.write(USAGE);
    return ExitCode.ok;
  }
  if (name === 'version' || name === '--version') {
    io.stdout.write(`flotilla ${version()}\n`);
    return ExitCode.ok;
  }
  const load = COMMANDS[name];
  if (!load) {
    io.stderr.write(`flotilla: unknown command "${name}"\n\n${USAGE}`);
    return ExitCode.usage;
  }
  try {
    return await (
      await load()
    )(rest, io);
  } catch (err) {
    const usage =
      err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    io.stderr.write(`flotilla ${name}: ${errorMessage(err)}\n`);
    if (usage) io.stderr.write(`Run "flotilla ${name} --help" for usage.\n`);
    return usage ? ExitCode.usage : ExitCode.error;
  }
}

function isEntryPoint(): boolean {
  // npm's bin is a symlink: compare real paths.
  const script = process.argv[1];
  if (!script) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === import.meta.url;
  } catch {
    return false;
  }
}

// Run only when executed as the bin, not when imported by tests.
if (isEntryPoint()) {
  // grpc-js passes an IP target as the TLS server name, which Node flags with DEP0123 on
  // every call: not something a user can act on. Every other warning still shows.
  quietDependencyWarnings();
  process.exitCode = await runCli(process.argv.slice(2));
}
