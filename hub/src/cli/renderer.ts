// `flotilla renderer`: the render server, run as its own user next to the hub (render.remote
// in docs/install.md), and `flotilla renderer certs`, which writes the TLS material that
// lets the hub, and only the hub, use it.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger, durations, errorMessage } from '@flotilla/common';
import { CertificateAuthority, createCa } from '../identity/pki.js';
import { RENDERER_CLIENT_NAME } from '../render/remote/protocol.js';
import { startRenderServer } from '../render/remote/server.js';
import { DEFAULT_SANDBOX_USER, parseSandboxUser, resolveSandbox } from '../render/sandbox.js';
import type { SandboxMode } from '../render/sandbox.js';
import { ExitCode, UsageError } from './io.js';
import type { CliIo } from './io.js';

/** Usage text of `flotilla renderer`. */
export const RENDERER_USAGE = `Usage: flotilla renderer --listen HOST:PORT --cert FILE --key FILE --client-ca FILE [options]
       flotilla renderer certs --out DIR [--hosts NAME,...]

Runs kustomize and helm for the hub (hub.yaml render.remote) as this process's user,
holding no credentials but its TLS key. Only a client certificate issued by --client-ca
with the common name "${RENDERER_CLIENT_NAME}" is accepted.

Options:
  --listen HOST:PORT      where to listen (default 0.0.0.0:7444)
  --cert, --key FILE      the renderer's serving certificate and key (PEM)
  --client-ca FILE        CA of the hub's client certificate (PEM)
  --kustomize, --helm P   the programs (default FLOTILLA_KUSTOMIZE / FLOTILLA_HELM, else on PATH)
  --sandbox MODE          auto|user|network|none: isolation of each run on this host (default auto)
  --sandbox-user UID[:GID] user of runs at level "user" (default 65534:65534)
  --max-job-bytes N       largest job (bundle files and chart archives) (default 128 MiB)

certs: writes ca.crt, renderer.crt, renderer.key (names from --hosts, default localhost)
and hub.crt, hub.key (for render.remote) into --out. The CA key is not kept: run it
again to issue new ones.
`;

/** Runs the render server until a signal, or `certs`; returns the exit code. */
export async function rendererCommand(argv: string[], io: CliIo): Promise<number> {
  if (argv[0] === 'certs') return certsCommand(argv.slice(1), io);
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', default: '0.0.0.0:7444' },
      cert: { type: 'string' },
      key: { type: 'string' },
      'client-ca': { type: 'string' },
      kustomize: { type: 'string' },
      helm: { type: 'string' },
      sandbox: { type: 'string', default: 'auto' },
      'sandbox-user': { type: 'string' },
      'max-job-bytes': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(RENDERER_USAGE);
    return ExitCode.ok;
  }
  const m = /^(.*):(\d{1,5})$/.exec(values.listen);
  if (!m || Number(m[2]) > 65535) throw new UsageError('--listen must be HOST:PORT');
  for (const flag of ['cert', 'key', 'client-ca'] as const)
    if (!values[flag]) throw new UsageError(`--${flag} is required`);
  const mode = values.sandbox as SandboxMode;
  if (!['auto', 'user', 'network', 'none'].includes(mode))
    throw new UsageError('--sandbox must be auto, user, network or none');
  const user = sandboxUser(values['sandbox-user']);
  const maxJobBytes =
    values['max-job-bytes'] === undefined ? undefined : Number(values['max-job-bytes']);
  if (maxJobBytes !== undefined && (!Number.isInteger(maxJobBytes) || maxJobBytes < 1024 * 1024))
    throw new UsageError('--max-job-bytes must be a whole number of bytes, at least 1 MiB');
  const read = async (flag: 'cert' | 'key' | 'client-ca'): Promise<string> => {
    try {
      return await readFile(values[flag] as string, 'utf8');
    } catch (err) {
      throw new Error(`--${flag}: cannot read "${values[flag]}": ${errorMessage(err)}`);
    }
  };
  const kustomizePath = values.kustomize ?? io.env.FLOTILLA_KUSTOMIZE ?? undefined;
  const helmPath = values.helm ?? io.env.FLOTILLA_HELM ?? undefined;
  const logger = createLogger({ name: 'renderer', level: io.env.FLOTILLA_LOG_LEVEL ?? 'info' });
  const sandbox = resolveSandbox({ mode, ...user }, [
    kustomizePath ?? 'kustomize',
    helmPath ?? 'helm',
  ]);
  if (sandbox.level !== 'user')
    logger.warn(
      { sandbox: sandbox.level, why: sandbox.weaker, uid: process.getuid?.() },
      'runs are not isolated from each other beyond this process: they run as the renderer user',
    );
  const server = await startRenderServer({
    host: (m[1] as string).replace(/^\[|\]$/g, ''),
    port: Number(m[2]),
    certPem: await read('cert'),
    keyPem: await read('key'),
    clientCaPem: await read('client-ca'),
    ...(kustomizePath ? { kustomizePath } : {}),
    ...(helmPath ? { helmPath } : {}),
    sandbox,
    ...(maxJobBytes !== undefined ? { maxJobBytes } : {}),
    logger,
  });
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info({ signal }, 'shutting down');
  const force = setTimeout(() => process.exit(ExitCode.error), durations.shutdownGrace);
  force.unref();
  await server.stop();
  return ExitCode.ok;
}

function sandboxUser(text: string | undefined): { uid: number; gid: number } {
  if (text === undefined) return { ...DEFAULT_SANDBOX_USER };
  const ids = parseSandboxUser(text);
  if (typeof ids === 'string')
    throw new UsageError('--sandbox-user must be UID or UID:GID, not root');
  return ids;
}

const TEN_YEARS = 10 * 365 * 86_400_000;

async function certsCommand(argv: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      hosts: { type: 'string', default: 'localhost' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout.write(RENDERER_USAGE);
    return ExitCode.ok;
  }
  if (!values.out) throw new UsageError('--out is required');
  const hosts = values.hosts
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h !== '');
  if (hosts.length === 0) throw new UsageError('--hosts must name at least one host');
  const ca = new CertificateAuthority(createCa('flotilla-renderer-ca'));
  const server = ca.issueKeyPair('flotilla-renderer', 'flotilla-renderer', TEN_YEARS, {
    server: true,
    hosts,
  });
  const client = ca.issueKeyPair(RENDERER_CLIENT_NAME, 'flotilla-hub', TEN_YEARS);
  await mkdir(values.out, { recursive: true, mode: 0o700 });
  const write = (name: string, text: string, mode: number): Promise<void> =>
    writeFile(join(values.out as string, name), text, { mode });
  await write('ca.crt', ca.caPem, 0o644);
  await write('renderer.crt', server.certPem, 0o644);
  await write('renderer.key', server.keyPem, 0o600);
  await write('hub.crt', client.certPem, 0o644);
  await write('hub.key', client.keyPem, 0o600);
  io.stdout.write(
    `wrote ca.crt, renderer.crt, renderer.key (for ${hosts.join(', ')}), hub.crt, hub.key to ${values.out}\n` +
      'renderer: --cert renderer.crt --key renderer.key --client-ca ca.crt\n' +
      'hub.yaml: render.remote { caFile: ca.crt, certFile: hub.crt, keyFile: hub.key }\n',
  );
  return ExitCode.ok;
}
