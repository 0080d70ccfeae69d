// `flotilla token create|list|revoke`: API tokens for reading fleet status (dashboards,
// CI, the web page) where the administrator certificate does not fit. Talks to the hub's
// Identity service with the administrator certificate, like `flotilla cluster`.
// A new token is shown once (stdout alone, or a 0600 file); the hub keeps only its digest.
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { adminDirOf } from './admin-dir.js';
import { adminClient, unary } from './cluster.js';
import { renderTable } from './format.js';
import type { ApiTokenInfo } from '../identity/api-tokens.js';
import { ExitCode, UsageError, durationFlag } from './io.js';
import type { CliIo } from './io.js';

/** Usage text of `flotilla token`. */
export const TOKEN_USAGE = `Usage:
  flotilla token create NAME [--ttl 90d] [--scope rollout|write] [--selector env=staging]
                        [--output-file FILE]
  flotilla token list
  flotilla token revoke NAME

Common options:
  --hub HOST:PORT     the hub's gRPC address (env FLOTILLA_HUB, default 127.0.0.1:7443)
  --admin-dir DIR     a copy of the hub's admin.crt, admin.key, ca.crt (env FLOTILLA_ADMIN_DIR,
                      default ~/.config/flotilla/admin)

An API token lets a dashboard, CI job or browser read the fleet's status and history
(HTTP /api/v1/* with "Authorization: Bearer TOKEN", gRPC FleetService likewise). With
--scope rollout (or write, every write a token may make) it may also approve, pause,
resume, abort and retry rollouts (flotilla rollout ...); without it, it cannot change
anything. With --selector it sees only the clusters the label selector matches, in every
read (status, deployments, history, watch, the page), and cannot act on rollouts.
"create" prints the token once on stdout (or writes it to FILE, mode 0600):
the hub keeps only its digest. Use it with the CLI as FLOTILLA_TOKEN or --token-file.
"list" shows names and times, never tokens. "revoke" takes effect at once.
`;

const iso = (ms: number): string => (ms ? new Date(ms).toISOString() : 'never');

function stateOf(t: Pick<ApiTokenInfo, 'revokedAtMs' | 'expiresAtMs'>, now: number): string {
  if (t.revokedAtMs) return 'revoked';
  return t.expiresAtMs <= now ? 'expired' : 'active';
}

/** Runs `flotilla token ...`; returns the exit code. */
export async function tokenCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      hub: { type: 'string' },
      'admin-dir': { type: 'string' },
      ttl: { type: 'string' },
      scope: { type: 'string', multiple: true },
      selector: { type: 'string' },
      'output-file': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [verb, name, ...extra] = positionals;
  if (values.help || verb === undefined) {
    (values.help ? io.stdout : io.stderr).write(TOKEN_USAGE);
    return values.help ? ExitCode.ok : ExitCode.usage;
  }
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if (!['create', 'list', 'revoke'].includes(verb))
    throw new UsageError(`unknown token command "${verb}" (use create, list or revoke)`);
  if (verb !== 'list' && !name) throw new UsageError(`token ${verb} needs a token NAME`);
  if (verb === 'list' && name) throw new UsageError(`unexpected arguments: ${name}`);
  const ttlMs = values.ttl ? durationFlag(values.ttl, '--ttl') : 0;
  const hub = values.hub ?? io.env.FLOTILLA_HUB ?? '127.0.0.1:7443';
  const adminDir = adminDirOf(values['admin-dir'], io);
  if (!adminDir)
    throw new UsageError(
      '--admin-dir (or FLOTILLA_ADMIN_DIR) is required: the hub identity directory holding admin.crt',
    );
  const client = await adminClient(hub, adminDir);
  try {
    if (verb === 'create') {
      const scopes = (values.scope ?? []).flatMap((s) => s.split(',')).filter((s) => s !== '');
      const selector = values.selector ?? '';
      const res = await unary<{
        token: string;
        expiresAtMs: number;
        scopes: string[];
        selector: string;
      }>((cb) => client.CreateApiToken({ name: name as string, ttlMs, scopes, selector }, cb));
      const sees = res.selector ? `; sees clusters ${res.selector} only` : '';
      const note = `API token ${name} created (${(res.scopes.length > 0 ? res.scopes : ['read']).join(', ')}${sees}); valid until ${iso(res.expiresAtMs)}. It is shown only now: the hub keeps only its digest.\n`;
      const file = values['output-file'];
      if (file) {
        await writeFile(resolve(io.cwd, file), `${res.token}\n`, { mode: 0o600 });
        io.stdout.write(note.replace('shown only now', `in ${resolve(io.cwd, file)} only`));
      } else {
        io.stderr.write(note);
        io.stdout.write(`${res.token}\n`);
      }
      return ExitCode.ok;
    }
    if (verb === 'revoke') {
      await unary<object>((cb) => client.RevokeApiToken({ name: name as string }, cb));
      io.stdout.write(`API token ${name} revoked\n`);
      return ExitCode.ok;
    }
    const { tokens } = await unary<{
      tokens: (Omit<ApiTokenInfo, 'scopes' | 'selector'> & {
        scopes: string[];
        selector?: string;
      })[];
    }>((cb) => client.ListApiTokens({}, cb));
    const now = Date.now();
    const rows = tokens.map((t) => [
      t.name,
      stateOf(t, now),
      t.scopes.length > 0 ? t.scopes.join(',') : 'read',
      t.selector || '<all>',
      iso(t.createdAtMs),
      iso(t.expiresAtMs),
      iso(t.lastUsedAtMs),
    ]);
    io.stdout.write(
      renderTable(['NAME', 'STATE', 'SCOPES', 'CLUSTERS', 'CREATED', 'EXPIRES', 'LAST USED'], rows),
    );
    return ExitCode.ok;
  } finally {
    client.close();
  }
}
