// `flotilla admin add|revoke|list`: administrators are people, each with a short-lived
// client certificate from the hub's CA (CN = the person), checked by serial like cluster
// certificates. `add` makes the key here and sends only a certificate request: the key
// never leaves this machine. Talks to the hub's Identity service with an administrator
// certificate (the admin directory), like `flotilla cluster` and `flotilla token`.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { adminDirOf } from './admin-dir.js';
import { adminClient, unary } from './cluster.js';
import { renderTable } from './format.js';
import { createCsr, generateKeyPem } from '../identity/pki.js';
import type { AdminInfo } from '../identity/admins.js';
import { ExitCode, UsageError, durationFlag } from './io.js';
import type { CliIo } from './io.js';

/** Usage text of `flotilla admin`. */
export const ADMIN_USAGE = `Usage:
  flotilla admin add NAME --output-dir DIR [--ttl 12h]
  flotilla admin revoke NAME
  flotilla admin list [-o table|json|yaml]

Common options:
  --hub HOST:PORT     the hub's gRPC address (env FLOTILLA_HUB, default 127.0.0.1:7443)
  --admin-dir DIR     your own admin.crt, admin.key and ca.crt (env FLOTILLA_ADMIN_DIR,
                      default ~/.config/flotilla/admin)

Each administrator is a person with their own certificate (CN = NAME), issued for --ttl
(default 12h, at most 7d) and checked by serial on every call. "add" makes a key on this
machine, has the hub sign a certificate for it, and writes admin.key (mode 0600),
admin.crt and ca.crt to DIR: hand DIR to NAME, who uses it as their --admin-dir. Run
"add" again for a person to renew their certificate. "revoke" refuses every certificate
of NAME at once on gRPC and HTTP and closes their open watches; the last administrator
with a valid certificate cannot be revoked. The first administrator is flotilla-admin,
whose certificate the hub writes into its identity.stateDir at first start.
`;

const iso = (ms: number): string => (ms ? new Date(ms).toISOString() : 'never');

function stateOf(a: AdminInfo, now: number): string {
  if (a.revokedAtMs) return 'revoked';
  return a.notAfterMs > now ? 'active' : 'expired';
}

/** Runs `flotilla admin ...`; returns the exit code. */
export async function adminCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      hub: { type: 'string' },
      'admin-dir': { type: 'string' },
      'output-dir': { type: 'string' },
      ttl: { type: 'string' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [verb, name, ...extra] = positionals;
  if (values.help || verb === undefined) {
    (values.help ? io.stdout : io.stderr).write(ADMIN_USAGE);
    return values.help ? ExitCode.ok : ExitCode.usage;
  }
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if (!['add', 'revoke', 'list'].includes(verb))
    throw new UsageError(`unknown admin command "${verb}" (use add, revoke or list)`);
  if (verb !== 'list' && !name) throw new UsageError(`admin ${verb} needs a person's NAME`);
  if (verb === 'list' && name) throw new UsageError(`unexpected arguments: ${name}`);
  if (verb === 'add' && !values['output-dir'])
    throw new UsageError('admin add needs --output-dir DIR for the new admin.key and admin.crt');
  const format = values.output ?? 'table';
  if (!['table', 'json', 'yaml'].includes(format))
    throw new UsageError(`-o ${format}: use table, json or yaml`);
  const ttlMs = values.ttl ? durationFlag(values.ttl, '--ttl') : 0;
  const hub = values.hub ?? io.env.FLOTILLA_HUB ?? '127.0.0.1:7443';
  const adminDir = adminDirOf(values['admin-dir'], io);
  if (!adminDir)
    throw new UsageError(
      '--admin-dir (or FLOTILLA_ADMIN_DIR) is required: a directory holding your admin.crt',
    );
  const client = await adminClient(hub, adminDir);
  try {
    if (verb === 'add') {
      const person = name as string;
      const keyPem = generateKeyPem();
      const res = await unary<{ certificatePem: string; caPem: string; notAfterMs: number }>((cb) =>
        client.AddAdmin({ name: person, csrPem: createCsr(keyPem, person), ttlMs }, cb),
      );
      const dir = resolve(io.cwd, values['output-dir'] as string);
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await writeFile(join(dir, 'admin.key'), keyPem, { mode: 0o600 });
      await writeFile(join(dir, 'admin.crt'), res.certificatePem, { mode: 0o644 });
      await writeFile(join(dir, 'ca.crt'), res.caPem, { mode: 0o644 });
      io.stdout.write(
        `administrator ${person}: certificate valid until ${iso(Number(res.notAfterMs))} in ${dir} (admin.key, admin.crt, ca.crt); use it as --admin-dir\n`,
      );
      return ExitCode.ok;
    }
    if (verb === 'revoke') {
      const res = await unary<{ streamsClosed: number }>((cb) =>
        client.RevokeAdmin({ name: name as string }, cb),
      );
      io.stdout.write(
        `administrator ${name} revoked: every certificate refused; ${res.streamsClosed} open stream(s) closed\n`,
      );
      return ExitCode.ok;
    }
    const { admins } = await unary<{ admins: AdminInfo[] }>((cb) => client.ListAdmins({}, cb));
    const now = Date.now();
    const rows = admins.map((a) => ({
      ...a,
      addedAtMs: Number(a.addedAtMs),
      revokedAtMs: Number(a.revokedAtMs),
      lastIssuedAtMs: Number(a.lastIssuedAtMs),
      notAfterMs: Number(a.notAfterMs),
    }));
    if (format === 'json') io.stdout.write(`${JSON.stringify({ admins: rows }, null, 2)}\n`);
    else if (format === 'yaml') io.stdout.write(stringify({ admins: rows }));
    else
      io.stdout.write(
        renderTable(
          ['NAME', 'STATE', 'CERTIFICATES', 'VALID UNTIL', 'ADDED BY', 'ADDED'],
          rows.map((a) => [
            a.name,
            stateOf(a, now),
            String(a.certificates),
            iso(a.notAfterMs),
            a.addedBy,
            iso(a.addedAtMs),
          ]),
        ),
      );
    return ExitCode.ok;
  } finally {
    client.close();
  }
}
