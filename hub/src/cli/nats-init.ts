// `flotilla nats init`: creates the NATS decentralized-auth material of an installation
// once: the nats-server configuration (operator, system and FLOTILLA accounts), the
// hub's own credentials and the account seed the hub signs agents' JWTs with; with
// --tls-hosts, also a private CA and the server's TLS certificate. Secrets go to files
// (mode 0600), never to the terminal.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createNatsAuthSetup } from '../identity/nats-jwt.js';
import { CertificateAuthority, createCa } from '../identity/pki.js';
import { ExitCode, UsageError } from './io.js';
import type { CliIo } from './io.js';

/** Usage text of `flotilla nats`. */
export const NATS_USAGE = `Usage: flotilla nats init [--output-dir DIR] [--resolver-dir DIR]
                          [--tls-hosts NAME,IP,...] [--tls-dir DIR]

Writes to DIR (default ./flotilla-nats/):
  nats-auth.conf   include it in nats-server's configuration (operator mode, \`full\` resolver
                   keeping account JWTs in --resolver-dir, default /data/jwt)
  hub.creds        the hub's NATS credentials            → hub.yaml nats.credsFile
  account.seed     the FLOTILLA account's signing seed    → hub.yaml nats.accountSeedFile
  system.creds     a system-account user (pushes revocations) → hub.yaml nats.systemCredsFile
  operator.seed    an operator signing key (re-signs the account) → hub.yaml nats.operatorSigningKeyFile
With --tls-hosts (the names and IPs agents and the hub use to reach NATS), also:
  nats-tls.conf    include it in nats-server's configuration: TLS required, with the files
                   below read from --tls-dir (default /etc/nats/tls)
  nats-ca.crt      a private CA (its key is not kept) → hub.yaml nats.caFile, and
                   \`flotilla cluster add --nats-ca-file\`
  nats-server.crt  the server's certificate (valid 2 years), and its key nats-server.key
Agents get their own user JWT from the hub when they register; it lets each publish
only under flotilla.events.<its cluster>.>. \`flotilla cluster revoke\` revokes it on the
NATS server within seconds.
`;

/** Lifetime of the NATS server certificate `nats init --tls-hosts` writes (2 years). */
export const NATS_SERVER_CERT_VALIDITY_MS = 2 * 365 * 86_400_000;

/** A private CA, a server certificate for hosts, and the nats-server `tls` block that uses them from dir. */
export function natsServerTls(
  hosts: string[],
  dir: string,
): { caPem: string; certPem: string; keyPem: string; serverConfig: string } {
  const ca = new CertificateAuthority(createCa('flotilla-nats-ca'));
  const server = ca.issueKeyPair(
    hosts[0] ?? 'nats',
    'flotilla-nats',
    NATS_SERVER_CERT_VALIDITY_MS,
    {
      server: true,
      hosts,
    },
  );
  const file = (name: string): string => JSON.stringify(`${dir.replace(/\/+$/, '')}/${name}`);
  const serverConfig = [
    '# TLS for every client (agents and the hub), written by `flotilla nats init --tls-hosts`.',
    'tls {',
    `  cert_file: ${file('nats-server.crt')}`,
    `  key_file: ${file('nats-server.key')}`,
    '  timeout: 5',
    '}',
    '',
  ].join('\n');
  return { caPem: ca.caPem, certPem: server.certPem, keyPem: server.keyPem, serverConfig };
}

/** Runs `flotilla nats ...`; returns the exit code. */
export async function natsCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'output-dir': { type: 'string' },
      'resolver-dir': { type: 'string' },
      'tls-hosts': { type: 'string' },
      'tls-dir': { type: 'string' },
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
  const names = ['hub.creds', 'account.seed', 'system.creds', 'operator.seed'];
  const tlsHosts = (values['tls-hosts'] ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const written = [join(dir, 'nats-auth.conf')];
  if (tlsHosts.length > 0) {
    const tls = natsServerTls(tlsHosts, values['tls-dir'] ?? '/etc/nats/tls');
    await writeFile(join(dir, 'nats-tls.conf'), tls.serverConfig, { mode: 0o644 });
    await writeFile(join(dir, 'nats-ca.crt'), tls.caPem, { mode: 0o644 });
    await writeFile(join(dir, 'nats-server.crt'), tls.certPem, { mode: 0o644 });
    await writeFile(join(dir, 'nats-server.key'), tls.keyPem, { mode: 0o600 });
    names.push('nats-server.key');
    written.push(...['nats-tls.conf', 'nats-ca.crt', 'nats-server.crt'].map((f) => join(dir, f)));
  } else if (values['tls-dir'] !== undefined) {
    throw new UsageError('--tls-dir needs --tls-hosts');
  }
  const secrets = names.map((f) => join(dir, f));
  io.stdout.write(`wrote ${written.join(', ')} and, secret (mode 0600): ${secrets.join(', ')}\n`);
  return ExitCode.ok;
}
