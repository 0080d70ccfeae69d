// A real Helm chart repository: a static HTTP(S) file server over a directory holding
// charts packaged by the real `helm package` and an index.yaml written by the real
// `helm repo index` (that is all a chart repository is). Optional basic auth or bearer
// token; ETag and 304 like common static servers; every request is recorded so a test
// can count downloads.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { dirname, join, normalize, sep } from 'node:path';
import { promisify } from 'node:util';
import { CommandFailedError } from './errors.js';
import { removeOnExit } from './processes.js';
import { binaryPaths } from './versions.js';

const run = promisify(execFile);

/** Options of startChartRepository(). */
export interface StartChartRepositoryOptions {
  /** Serve HTTPS with this certificate (PEM) instead of HTTP. */
  tls?: { certPem: string; keyPem: string };
  /** Require HTTP basic auth with these credentials. */
  basicAuth?: { username: string; password: string };
  /** Require `Authorization: Bearer <token>`. */
  token?: string;
}

/** One request the repository answered. */
export interface ChartRepoRequest {
  path: string;
  status: number;
  /** The Authorization header was present. */
  authorized: boolean;
}

/** A running chart repository. */
export interface TestChartRepository {
  /** Its URL, e.g. http://127.0.0.1:PORT (no trailing slash). */
  url: string;
  /** The served directory: packaged charts and index.yaml. */
  dir: string;
  /** Requests answered so far, oldest first. */
  readonly requests: readonly ChartRepoRequest[];
  /** Packages a chart directory with `helm package` into the repository and rewrites index.yaml with `helm repo index`. */
  publish(chartDir: string): Promise<string>;
  stop(): Promise<void>;
}

/** Starts a chart repository on a loopback port, serving an empty directory at first. */
export async function startChartRepository(
  options: StartChartRepositoryOptions = {},
): Promise<TestChartRepository> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-chart-repo-'));
  removeOnExit(dir);
  const requests: ChartRepoRequest[] = [];
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    void serve(dir, options, req, res).then((status) =>
      requests.push({
        path: (req.url ?? '').split('?')[0] as string,
        status,
        authorized: req.headers.authorization !== undefined,
      }),
    );
  };
  const server: Server = options.tls
    ? createHttpsServer({ cert: options.tls.certPem, key: options.tls.keyPem }, handler)
    : createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  await writeFile(join(dir, 'index.yaml'), 'apiVersion: v1\nentries: {}\n');
  return {
    url,
    dir,
    requests,
    publish: async (chartDir) => {
      const tgz = await helmPackage(chartDir, dir);
      await helm(['repo', 'index', dir, '--url', url]);
      return tgz;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function serve(
  root: string,
  options: StartChartRepositoryOptions,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<number> {
  const send = (status: number, body: string | Buffer = '', headers = {}): number => {
    res.writeHead(status, headers);
    res.end(body);
    return status;
  };
  if (!authorized(options, req.headers.authorization))
    return send(401, 'unauthorized\n', {
      'www-authenticate': options.token ? 'Bearer realm="charts"' : 'Basic realm="charts"',
    });
  const rel = normalize(decodeURIComponent((req.url ?? '/').split('?')[0] as string)).replace(
    /^[/\\]+/,
    '',
  );
  if (rel.startsWith('..') || rel.includes(`${sep}..`)) return send(400);
  let body: Buffer;
  try {
    body = await readFile(join(root, rel));
  } catch {
    return send(404, 'not found\n');
  }
  const etag = `"${createHash('sha1').update(body).digest('hex')}"`;
  if (req.headers['if-none-match'] === etag) return send(304, '', { etag });
  const type = rel.endsWith('.yaml') ? 'application/x-yaml' : 'application/gzip';
  return send(200, body, { etag, 'content-type': type, 'content-length': body.length });
}

function authorized(options: StartChartRepositoryOptions, header: string | undefined): boolean {
  if (options.token) return header === `Bearer ${options.token}`;
  if (!options.basicAuth) return true;
  const { username, password } = options.basicAuth;
  return header === `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

/** Runs the cached `helm` program; rejects with CommandFailedError. */
export async function helm(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const program = binaryPaths().helm;
  try {
    const { stdout } = await run(program, args, { env: { ...process.env, ...env } });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; code?: number };
    throw new CommandFailedError(
      `${program} ${args.join(' ')}`,
      typeof e.code === 'number' ? e.code : null,
      e.stderr ?? String(err),
    );
  }
}

/** Packages a chart directory with the real `helm package` into outDir; returns the archive's path. */
export async function helmPackage(chartDir: string, outDir: string): Promise<string> {
  await mkdir(outDir, { recursive: true });
  const before = new Set(await readdir(outDir));
  const out = await helm(['package', chartDir, '--destination', outDir]);
  const path = /saved it to: (.+\.tgz)/.exec(out)?.[1]?.trim();
  if (path) return path;
  const added = (await readdir(outDir)).find((f) => f.endsWith('.tgz') && !before.has(f));
  return join(outDir, added ?? '');
}

/** Writes a minimal chart (Chart.yaml, one ConfigMap template) to `dir`; returns `dir`. */
export async function writeTestChart(
  dir: string,
  chart: { name: string; version: string; data?: Record<string, string> },
): Promise<string> {
  await mkdir(join(dir, 'templates'), { recursive: true });
  await writeFile(
    join(dir, 'Chart.yaml'),
    `apiVersion: v2\nname: ${chart.name}\nversion: ${chart.version}\nappVersion: "${chart.version}"\n`,
  );
  const data = { version: chart.version, ...chart.data };
  await writeFile(
    join(dir, 'templates', 'configmap.yaml'),
    [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ .Release.Name }}-{{ .Chart.Name }}',
      '  labels:',
      '    helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}',
      'data:',
      ...Object.entries(data).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
      '  greeting: {{ .Values.greeting | default "hello" | quote }}',
      '',
    ].join('\n'),
  );
  await mkdir(dirname(join(dir, 'values.yaml')), { recursive: true });
  await writeFile(join(dir, 'values.yaml'), 'greeting: hello\n');
  return dir;
}
