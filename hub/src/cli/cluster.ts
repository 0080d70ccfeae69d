// `flotilla cluster add|revoke|list`: the administrator's side of per-cluster identities.
// It talks to the running hub's Identity service with the administrator certificate the
// hub wrote into its identity state directory (admin.crt, admin.key, ca.crt).
// Secrets (the bootstrap token) are written to files with mode 0600, never printed.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { ConfigError, errorMessage, natsTransport } from '@flotilla/common';
import { loadFlotillaProto } from '@flotilla/proto';
import type { IdentityClient } from '@flotilla/proto';
import { adminDirOf } from './admin-dir.js';
import { DEFAULT_AGENT_IMAGE, agentManifests } from './agent-manifests.js';
import { renderTable } from './format.js';
import { ExitCode, UsageError, durationFlag } from './io.js';
import type { CliIo } from './io.js';

/** Usage text of `flotilla cluster`. */
export const CLUSTER_USAGE = `Usage:
  flotilla cluster add NAME [--labels k=v,...] [--token-ttl 1h] [--output-dir DIR]
                            [--agent-hub HOST:PORT] [--nats URL] [--nats-ca-file FILE]
                            [--nats-allow-plaintext] [--image IMAGE] [--namespaces a,b]
  flotilla cluster revoke NAME
  flotilla cluster list

Common options:
  --hub HOST:PORT     the hub's gRPC address (env FLOTILLA_HUB, default 127.0.0.1:7443)
  --admin-dir DIR     a copy of the hub's admin.crt, admin.key, ca.crt (env FLOTILLA_ADMIN_DIR,
                      default ~/.config/flotilla/admin; status, get, ... trust its ca.crt too)

"add" issues a single-use bootstrap token and writes DIR (default ./flotilla-NAME/):
  agent.yaml   the agent's manifests, bootstrap Secret included: kubectl apply -f DIR/agent.yaml
  token        the bootstrap token alone (mode 0600), for --bootstrap-token-file
  ca.crt       the hub's CA certificate
  nats-ca.crt  the NATS server's CA (with --nats-ca-file), also in agent.yaml
--nats URL is how the agent reaches NATS (env FLOTILLA_NATS_URL, default
tls://nats.flotilla-system:4222); --nats-ca-file FILE (env FLOTILLA_NATS_CA_FILE) the CA
its certificate is verified with, when it is not from a public CA (flotilla nats init
--tls-hosts writes one). Plaintext nats:// to a non-loopback address needs
--nats-allow-plaintext.
The cluster must also be declared in the fleet repo (clusters/NAME.yaml) to receive anything.
"revoke" cuts the cluster off at once: its certificates stop working, its streams close, and
the NATS server drops and refuses its credentials (when the hub has nats.systemCredsFile).
`;

function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!text) return labels;
  for (const pair of text
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`--labels: "${pair}" is not key=value`);
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}

/** An Identity client speaking mTLS with the administrator certificate of dir. */
export async function adminClient(hub: string, dir: string): Promise<IdentityClient> {
  const read = async (name: string): Promise<Buffer> => {
    try {
      return await readFile(join(dir, name));
    } catch (err) {
      throw new ConfigError(
        'admin-dir',
        `cannot read ${join(dir, name)}: ${errorMessage(err)} (the hub writes it into its identity.stateDir; pass --admin-dir or set FLOTILLA_ADMIN_DIR)`,
      );
    }
  };
  const creds = grpc.credentials.createSsl(
    await read('ca.crt'),
    await read('admin.key'),
    await read('admin.crt'),
  );
  const { Identity } = loadFlotillaProto();
  return new Identity(hub, creds) as unknown as IdentityClient;
}

/** A unary call as a promise; a refusal becomes an error naming the gRPC status. */
export function unary<T>(
  fn: (cb: (err: grpc.ServiceError | null, res?: T) => void) => void,
): Promise<T> {
  return new Promise((ok, fail) =>
    fn((err, res) =>
      err
        ? fail(
            new Error(
              `hub refused: ${grpc.status[err.code] ?? err.code}: ${err.details || err.message}`,
            ),
          )
        : ok(res as T),
    ),
  );
}

/** Default NATS URL of the agents `cluster add` installs: NATS in the hub's namespace, over TLS. */
export const DEFAULT_AGENT_NATS_URL = 'tls://nats.flotilla-system:4222';

// The agent's NATS URL and TLS, checked as the agent will check them, so a manifest
// that would not start is never written.
function agentNats(
  values: Record<string, string | boolean | undefined>,
  io: CliIo,
): { url: string; tls: boolean; caFile: string | undefined; allowPlaintext: boolean } {
  const url =
    (values.nats as string | undefined) ?? io.env.FLOTILLA_NATS_URL ?? DEFAULT_AGENT_NATS_URL;
  const caFile = (values['nats-ca-file'] as string | undefined) ?? io.env.FLOTILLA_NATS_CA_FILE;
  const allowPlaintext = values['nats-allow-plaintext'] === true;
  try {
    const { tls } = natsTransport(
      url,
      { caFile, allowPlaintext },
      { url: '--nats', caFile: '--nats-ca-file', allowPlaintext: '--nats-allow-plaintext' },
    );
    return { url, tls, caFile, allowPlaintext };
  } catch (err) {
    throw new UsageError(errorMessage(err));
  }
}

async function readNatsCa(file: string, io: CliIo): Promise<string> {
  const path = resolve(io.cwd, file);
  let pem: string;
  try {
    pem = await readFile(path, 'utf8');
  } catch (err) {
    throw new UsageError(`--nats-ca-file: cannot read ${path}: ${errorMessage(err)}`);
  }
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw new UsageError(`--nats-ca-file: ${path} holds no PEM certificate`);
  return pem;
}

/** Runs `flotilla cluster ...`; returns the exit code. */
export async function clusterCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      hub: { type: 'string' },
      'admin-dir': { type: 'string' },
      labels: { type: 'string', short: 'l' },
      'token-ttl': { type: 'string' },
      'output-dir': { type: 'string' },
      'agent-hub': { type: 'string' },
      nats: { type: 'string' },
      'nats-ca-file': { type: 'string' },
      'nats-allow-plaintext': { type: 'boolean' },
      image: { type: 'string' },
      namespaces: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [verb, name, ...extra] = positionals;
  if (values.help || verb === undefined) {
    (values.help ? io.stdout : io.stderr).write(CLUSTER_USAGE);
    return values.help ? ExitCode.ok : ExitCode.usage;
  }
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if ((verb === 'add' || verb === 'revoke') && !name)
    throw new UsageError(`cluster ${verb} needs a cluster NAME`);
  const hub = values.hub ?? io.env.FLOTILLA_HUB ?? '127.0.0.1:7443';
  const adminDir = adminDirOf(values['admin-dir'], io);
  if (!adminDir)
    throw new UsageError(
      '--admin-dir (or FLOTILLA_ADMIN_DIR) is required: the hub identity directory holding admin.crt',
    );
  const client = await adminClient(hub, adminDir);
  try {
    if (verb === 'add') return await add(client, name as string, values, hub, io);
    if (verb === 'revoke') {
      const res = await unary<{ streamsClosed: number }>((cb) =>
        client.RevokeCluster({ name: name as string }, cb),
      );
      io.stdout.write(`cluster ${name} revoked; ${res.streamsClosed} open stream(s) closed\n`);
      return ExitCode.ok;
    }
    if (verb === 'list') {
      const res = await unary<{
        clusters: {
          name: string;
          labels: Record<string, string>;
          addedAtMs: number;
          revokedAtMs: number;
          certificates: number;
        }[];
      }>((cb) => client.ListIdentities({}, cb));
      const rows = res.clusters.map((c) => [
        c.name,
        Object.entries(c.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(',') || '<none>',
        c.revokedAtMs ? 'revoked' : c.certificates > 0 ? 'registered' : 'pending',
        new Date(Number(c.addedAtMs)).toISOString(),
      ]);
      io.stdout.write(renderTable(['NAME', 'LABELS', 'STATE', 'ADDED'], rows));
      return ExitCode.ok;
    }
    throw new UsageError(`unknown cluster command "${verb}" (use add, revoke or list)`);
  } finally {
    client.close();
  }
}

async function add(
  client: IdentityClient,
  name: string,
  values: Record<string, string | boolean | undefined>,
  hub: string,
  io: CliIo,
): Promise<number> {
  const labels = parseLabels(values.labels as string | undefined);
  const nats = agentNats(values, io);
  const natsCaPem = nats.caFile ? await readNatsCa(nats.caFile, io) : undefined;
  const ttl = values['token-ttl'] ? durationFlag(values['token-ttl'] as string, '--token-ttl') : 0;
  const res = await unary<{ token: string; expiresAtMs: number; caPem: string }>((cb) =>
    client.AddCluster({ name, labels, tokenTtlMs: ttl }, cb),
  );
  const dir = resolve(io.cwd, (values['output-dir'] as string | undefined) ?? `flotilla-${name}`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const namespaces = ((values.namespaces as string | undefined) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const manifests = agentManifests({
    cluster: name,
    hub: (values['agent-hub'] as string | undefined) ?? hub,
    nats: nats.url,
    ...(natsCaPem !== undefined ? { natsCaPem } : {}),
    natsAllowPlaintext: nats.allowPlaintext,
    image: (values.image as string | undefined) ?? DEFAULT_AGENT_IMAGE,
    namespaces,
    token: res.token,
    caPem: res.caPem,
  });
  await writeFile(join(dir, 'agent.yaml'), manifests, { mode: 0o600 });
  await writeFile(join(dir, 'token'), `${res.token}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'ca.crt'), res.caPem, { mode: 0o644 });
  if (natsCaPem !== undefined)
    await writeFile(join(dir, 'nats-ca.crt'), natsCaPem, { mode: 0o644 });
  io.stdout.write(
    [
      `cluster ${name} added; bootstrap token valid until ${new Date(Number(res.expiresAtMs)).toISOString()} (single use)`,
      `wrote ${join(dir, 'agent.yaml')} (contains the token: keep it private), ${join(dir, 'token')}, ${join(dir, 'ca.crt')}${natsCaPem !== undefined ? `, ${join(dir, 'nats-ca.crt')}` : ''}`,
      `the agent reaches NATS at ${nats.url} (${nats.tls ? `TLS, certificate verified against ${natsCaPem !== undefined ? 'nats-ca.crt' : 'the system roots'}` : 'PLAINTEXT'})`,
      '',
      'Install the agent in the cluster:',
      `  kubectl apply -f ${join(dir, 'agent.yaml')}`,
      `Declare it in the fleet repo (clusters/${name}.yaml) so it receives desired state.`,
      '',
    ].join('\n'),
  );
  return ExitCode.ok;
}
