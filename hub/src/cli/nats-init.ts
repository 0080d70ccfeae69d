// `flotilla nats init`: creates the NATS decentralized-auth material of an installation
// once: the nats-server configuration (operator, system and FLOTILLA accounts), the
// hub's own credentials and the account seed the hub signs agents' JWTs with. Secrets
// go to files (mode 0600), never to the terminal.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createNatsAuthSetup } from '../identity/nats-jwt.js';
import { ExitCode, UsageError } from './io.js';
import type { CliIo } from './io.js';

/** Usage text of `flotilla nats`. */
export const NATS_USAGE = `Usage: flotilla nats init [--output-dir DIR] [--resolver-dir DIR]

Writes to DIR (default ./flotilla-nats/):
  nats-auth.conf   include it in nats-server's configuration (operator mode, \`full\` resolver
                   keeping account JWTs in --resolver-dir, default /data/jwt)
  hub.creds        the hub's NATS credentials            → hub.yaml nats.credsFile
  account.seed     the FLOTILLA account's signing seed    → hub.yaml nats.accountSeedFile
  system.creds     a system-account user (pushes revocations) → hub.yaml nats.systemCredsFile
  operator.seed    an operator signing key (re-signs the account) → hub.yaml nats.operatorSigningKeyFile
Agents get their own user JWT from the hub when they register; it lets each publish
only under flotilla.events.<its cluster>.>. \`flotilla cluster revoke\` revokes it on the
NATS server within seconds.
`;

/** Runs `flotilla nats ...`; returns the exit code. */
export async function natsCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'output-dir': { type: 'string' },
      'resolver-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(NATS_USAGE);
    return ExitCode.ok;
  }
  if (positionals[0] !== 'init' || positionals.length > 1)
    throw new UsageError('expected "flotilla nats init"');
  const dir = resolve(io.cwd, values['output-dir'] ?? 'flotilla-nats');
  const setup = createNatsAuthSetup(
    values['resolver-dir'] ? { resolverDir: values['resolver-dir'] } : {},
  );
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(join(dir, 'nats-auth.conf'), setup.serverConfig, { mode: 0o644 });
  await writeFile(join(dir, 'hub.creds'), setup.hubCreds, { mode: 0o600 });
  await writeFile(join(dir, 'account.seed'), `${setup.accountSeed}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'system.creds'), setup.systemCreds, { mode: 0o600 });
  await writeFile(join(dir, 'operator.seed'), `${setup.operatorSigningSeed}\n`, { mode: 0o600 });
  const secrets = ['hub.creds', 'account.seed', 'system.creds', 'operator.seed'].map((f) =>
    join(dir, f),
  );
  io.stdout.write(
    `wrote ${join(dir, 'nats-auth.conf')} and, secret (mode 0600): ${secrets.join(', ')}\n`,
  );
  return ExitCode.ok;
}
