// `flotilla hub init`: makes the hub's identity directory once, before the hub runs, for
// hub replicas that mount it read-only from one Secret (identity/init-dir.ts). Keys go to
// files (mode 0600), never to the terminal.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { initIdentityDir, newFirstAdmin } from '../identity/init-dir.js';
import { ExitCode, UsageError } from './io.js';
import type { CliIo } from './io.js';

/** Usage text of `flotilla hub init`. */
export const HUB_INIT_USAGE = `Usage: flotilla hub init --identity-dir DIR [--new-admin]

Writes the hub's CA and the first administrator's certificate (flotilla-admin) into DIR
(created mode 0700; refused if any of the files exists):
  ca.crt, ca.key       the CA every hub replica signs agents' and people's certificates with
  admin.crt, admin.key the first administrator: use DIR as --admin-dir / FLOTILLA_ADMIN_DIR
Give every replica the same files read-only as identity.stateDir; in Kubernetes:
  kubectl -n flotilla-system create secret generic flotilla-hub-identity --from-file=DIR
  helm install ... --set identity.secretName=flotilla-hub-identity
A single hub does not need this: it makes them itself at first start.
--new-admin: only a new admin.crt/admin.key from the CA in DIR, when nobody holds a valid
administrator certificate any more; update the Secret and restart the replicas: the hub
re-admits flotilla-admin with it.
`;

/** Runs `flotilla hub init ...`; returns the exit code. */
export async function hubInitCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'identity-dir': { type: 'string' },
      'new-admin': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(HUB_INIT_USAGE);
    return ExitCode.ok;
  }
  if (positionals.length > 0)
    throw new UsageError(`unexpected arguments: ${positionals.join(' ')}`);
  if (!values['identity-dir']) throw new UsageError('--identity-dir DIR is required');
  const dir = resolve(io.cwd, values['identity-dir']);
  const written = values['new-admin'] ? await newFirstAdmin(dir) : await initIdentityDir(dir);
  const keys = written.filter((f) => f.endsWith('.key'));
  const certs = written.filter((f) => !f.endsWith('.key'));
  io.stdout.write(`wrote ${certs.join(', ')} and, secret (mode 0600): ${keys.join(', ')}\n`);
  return ExitCode.ok;
}
