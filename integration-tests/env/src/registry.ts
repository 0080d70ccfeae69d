// A real OCI registry for Helm charts: CNCF Distribution (`registry`, built by
// tools/build-registry.sh) with filesystem storage in a temp dir on a loopback port,
// optionally behind TLS and htpasswd basic auth. Charts are pushed with the real
// `helm push`.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { helm } from './chart-repo.js';
import { PrerequisiteMissingError } from './errors.js';
import { removeOnExit, spawnServer, untilReadyOrExit } from './processes.js';
import { freePort, waitFor } from './util.js';
import { binaryPaths, PREREQS_HINT } from './versions.js';
import { accessSync, constants } from 'node:fs';

/** How long the registry may take to answer /v2/ (5 s is plenty on loopback). */
export const REGISTRY_READY_TIMEOUT_MS = 20_000;

/** Options of startRegistry(). */
export interface StartRegistryOptions {
  /** Serve HTTPS with this certificate (PEM); its CA must be given to clients. */
  tls?: { certPem: string; keyPem: string; caPem: string };
  /** Require these credentials (htpasswd, bcrypt). */
  basicAuth?: { username: string; password: string };
}

/** A running registry. */
export interface TestRegistry {
  /** host:port on loopback. */
  host: string;
  /** oci://host:port, to which a repository path is appended (oci://host:port/charts/name). */
  url: string;
  /** Pushes a packaged chart (.tgz) to oci://host:port/<path> with the real `helm push`. */
  push(tgz: string, path: string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the cached CNCF Distribution registry; PrerequisiteMissingError when it was not built. */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  const program = binaryPaths().registry;
  try {
    accessSync(program, constants.X_OK);
  } catch {
    throw new PrerequisiteMissingError(
      'registry (CNCF Distribution)',
      PREREQS_HINT,
      `${program} not found`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-registry-'));
  removeOnExit(dir);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const lines = [
    'version: 0.1',
    'log: { level: warn, accesslog: { disabled: true } }',
    `storage: { filesystem: { rootdirectory: ${JSON.stringify(join(dir, 'data'))} }, delete: { enabled: true } }`,
    `http: { addr: ${JSON.stringify(host)}, secret: ${JSON.stringify(randomBytes(16).toString('hex'))}, draintimeout: 1s`,
  ];
  if (options.tls) {
    await writeFile(join(dir, 'tls.crt'), options.tls.certPem);
    await writeFile(join(dir, 'tls.key'), options.tls.keyPem, { mode: 0o600 });
    await writeFile(join(dir, 'ca.crt'), options.tls.caPem);
    lines[3] += `, tls: { certificate: ${JSON.stringify(join(dir, 'tls.crt'))}, key: ${JSON.stringify(join(dir, 'tls.key'))} }`;
  }
  lines[3] += ' }';
  if (options.basicAuth) {
    const hash = bcrypt.hashSync(options.basicAuth.password, 8);
    await writeFile(join(dir, 'htpasswd'), `${options.basicAuth.username}:${hash}\n`);
    lines.push(
      `auth: { htpasswd: { realm: flotilla-test, path: ${JSON.stringify(join(dir, 'htpasswd'))} } }`,
    );
  }
  await writeFile(join(dir, 'config.yml'), `${lines.join('\n')}\n`);
  const proc = spawnServer('registry', program, ['serve', join(dir, 'config.yml')], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
    logFile: join(dir, 'registry.log'),
  });
  const scheme = options.tls ? 'https' : 'http';
  await untilReadyOrExit([proc], (signal) =>
    waitFor(() => answers(`${scheme}://${host}/v2/`, options.tls?.caPem), {
      timeoutMs: REGISTRY_READY_TIMEOUT_MS,
      intervalMs: 100,
      signal,
      what: `registry on ${host} to answer /v2/`,
    }),
  );
  const registryConfig = join(dir, 'helm-registry.json');
  return {
    host,
    url: `oci://${host}`,
    push: async (tgz, path) => {
      const auth = options.basicAuth
        ? ['--username', options.basicAuth.username, '--password', options.basicAuth.password]
        : [];
      const tls = options.tls ? ['--ca-file', join(dir, 'ca.crt')] : ['--plain-http'];
      await helm([
        'push',
        tgz,
        `oci://${host}/${path}`,
        ...tls,
        ...auth,
        '--registry-config',
        registryConfig,
      ]);
    },
    stop: () => proc.stop(),
  };
}

// Any HTTP answer (200, or 401 behind auth) means the registry serves.
function answers(url: string, caPem: string | undefined): Promise<boolean> {
  return new Promise((resolve) => {
    const https = url.startsWith('https:');
    const req = (https ? httpsRequest : httpRequest)(
      url,
      { method: 'GET', timeout: 2_000, ...(https && caPem ? { ca: caPem } : {}) },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200 || res.statusCode === 401);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}
