// startGitServer(): real smart-HTTP Git, served by `git http-backend` (the CGI program
// git ships) behind a small Node HTTP server, optionally behind basic auth. Both the git
// CLI and isomorphic-git talk to it exactly as to a hosted Git service.
import { spawn } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GitCredentials } from './git.js';
import { runGit } from './git.js';

/** A running smart-HTTP Git server. */
export interface TestGitServer {
  /** Base URL, e.g. http://127.0.0.1:PORT/git. */
  url: string;
  /** Creates an empty bare repo (branch main, pushes allowed); resolves its clone URL. */
  createRepo(name: string): Promise<string>;
  /** Closes the server and deletes every repository. */
  stop(): Promise<void>;
  /** Stops listening (connections are refused, as with a Git server that is down); repositories stay. */
  pause(): Promise<void>;
  /** Listens again on the same port (no-op while listening). */
  resume(): Promise<void>;
}

/** Options of startGitServer(). */
export interface StartGitServerOptions {
  /** Require these basic-auth credentials for every request. Default: no auth. */
  auth?: GitCredentials;
}

const BASE_PATH = '/git';

function authorized(req: IncomingMessage, auth: GitCredentials): string | undefined {
  const header = req.headers.authorization ?? '';
  if (!header.startsWith('Basic ')) return undefined;
  const given = Buffer.from(header.slice(6), 'base64');
  const expected = Buffer.from(`${auth.username}:${auth.password}`);
  return given.length === expected.length && timingSafeEqual(given, expected)
    ? auth.username
    : undefined;
}

// Writes CGI output as an HTTP response: header lines up to the blank line ("Status:"
// becomes the status code), then the body streamed as it comes.
function pipeCgiResponse(stdout: NodeJS.ReadableStream, res: ServerResponse): void {
  let head = Buffer.alloc(0);
  let inBody = false;
  stdout.on('data', (chunk: Buffer) => {
    if (inBody) {
      res.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const crlf = head.indexOf('\r\n\r\n');
    const lf = head.indexOf('\n\n');
    const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf : lf;
    if (end < 0) return;
    const sepLength = end === crlf ? 4 : 2;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10) || 500;
      else res.setHeader(name, value);
    }
    res.writeHead(status);
    inBody = true;
    const rest = head.subarray(end + sepLength);
    if (rest.length) res.write(rest);
  });
  stdout.on('end', () => {
    if (!inBody && !res.headersSent) res.writeHead(502);
    res.end();
  });
}

function handle(
  root: string,
  auth: GitCredentials | undefined,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (!url.pathname.startsWith(`${BASE_PATH}/`)) {
    res.writeHead(404).end();
    return;
  }
  let user = '';
  if (auth) {
    const ok = authorized(req, auth);
    if (!ok) {
      req.resume();
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="flotilla-test-git"' }).end();
      return;
    }
    user = ok;
  }
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_PROJECT_ROOT: root,
    GIT_HTTP_EXPORT_ALL: '1',
    REQUEST_METHOD: req.method ?? 'GET',
    PATH_INFO: decodeURIComponent(url.pathname.slice(BASE_PATH.length)),
    QUERY_STRING: url.search.slice(1),
    CONTENT_TYPE: req.headers['content-type'] ?? '',
    REMOTE_USER: user,
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
    GIT_PROTOCOL: (req.headers['git-protocol'] as string | undefined) ?? '',
    // http-backend gunzips request bodies itself when told the encoding.
    HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
  };
  // Chunked bodies (large pushes) have no length: http-backend then reads to EOF.
  if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
  const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.on('error', (err) => {
    if (!res.headersSent) res.writeHead(500);
    res.end(`git http-backend: ${err.message}`);
  });
  child.on('exit', (code) => {
    if (code !== 0 && stderr)
      process.emitWarning(`git http-backend exited ${code}: ${stderr.trim()}`);
  });
  req.pipe(child.stdin);
  child.stdin.on('error', () => undefined); // the backend may exit before reading the body (e.g. 404)
  pipeCgiResponse(child.stdout, res);
}

/** Starts a Git server on a free loopback port serving repos from a fresh temp dir. */
export async function startGitServer(options: StartGitServerOptions = {}): Promise<TestGitServer> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-git-'));
  const server: Server = createServer((req, res) => handle(root, options.auth, req, res));
  const listen = (on: number): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(on, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(0);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const close = async (): Promise<void> => {
    if (!server.listening) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const url = `http://127.0.0.1:${port}${BASE_PATH}`;
  return {
    url,
    async createRepo(name) {
      if (!/^[A-Za-z0-9._/-]+$/.test(name) || name.includes('..'))
        throw new Error(`invalid repo name "${name}"`);
      const path = join(root, `${name}.git`);
      await runGit(['init', '--quiet', '--bare', '--initial-branch=main', path]);
      // Anonymous pushes are refused by http-backend unless receivepack is set explicitly.
      await runGit(['config', 'http.receivepack', 'true'], path);
      return `${url}/${name}.git`;
    },
    async stop() {
      await close();
      await rm(root, { recursive: true, force: true });
    },
    pause: close,
    async resume() {
      if (!server.listening) await listen(port);
    },
  };
}
