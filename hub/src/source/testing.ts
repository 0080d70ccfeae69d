// Test helper: a real smart-HTTP Git server (`git http-backend` as CGI behind
// node:http) and a pusher that uses the git CLI. Tests only; the shared harness in
// integration-tests/ will have its own.
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A running test Git server. */
export interface TestGitServer {
  /** Directory holding the bare repositories. */
  root: string;
  /** URL of a repository by name, without credentials. */
  url(repo: string): string;
  /** URL with the server's credentials embedded, for the git CLI. */
  pushUrl(repo: string): string;
  /** Creates an empty bare repository whose HEAD is refs/heads/<branch>. */
  createRepo(repo: string, branch?: string): Promise<void>;
  close(): Promise<void>;
}

/** Starts a Git server on 127.0.0.1; with `auth`, requests without those Basic credentials get 401. */
export async function startTestGitServer(
  opts: { auth?: { username: string; password: string } } = {},
): Promise<TestGitServer> {
  const root = await mkdtemp(join(tmpdir(), 'flotilla-git-'));
  const expected = opts.auth
    ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`
    : undefined;
  const server: Server = createServer((req, res) => {
    if (expected && req.headers.authorization !== expected) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' }).end('unauthorized\n');
      return;
    }
    serveCgi(root, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const creds = opts.auth
    ? `${encodeURIComponent(opts.auth.username)}:${encodeURIComponent(opts.auth.password)}@`
    : '';
  return {
    root,
    url: (repo) => `http://127.0.0.1:${port}/${repo}.git`,
    pushUrl: (repo) => `http://${creds}127.0.0.1:${port}/${repo}.git`,
    async createRepo(repo, branch = 'main') {
      await run('git', [
        'init',
        '--bare',
        '--quiet',
        `--initial-branch=${branch}`,
        join(root, `${repo}.git`),
      ]);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(root, { recursive: true, force: true });
    },
  };
}

function serveCgi(root: string, req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.receivepack',
      GIT_CONFIG_VALUE_0: 'true',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      HTTP_CONTENT_ENCODING: req.headers['content-encoding'] ?? '',
      GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      REMOTE_ADDR: req.socket.remoteAddress ?? '',
      REMOTE_USER: 'test',
    },
  });
  req.pipe(child.stdin);
  let head = Buffer.alloc(0);
  let headerDone = false;
  child.stdout.on('data', (chunk: Buffer) => {
    if (headerDone) return void res.write(chunk);
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    headerDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString().split('\r\n')) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim();
      const value = line.slice(colon + 1).trim();
      if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
      else res.setHeader(name, value);
    }
    res.writeHead(status);
    res.write(head.subarray(end + 4));
  });
  child.on('close', () => {
    if (!headerDone) res.writeHead(502);
    res.end();
  });
}

/** A local work tree that commits files and pushes them with the git CLI. */
export interface TestPusher {
  /** Writes (or, with null, deletes) files, commits, pushes to the branch; returns the commit SHA. */
  commit(files: Record<string, string | null>, message?: string): Promise<string>;
  close(): Promise<void>;
}

/** Creates a work tree that pushes to `remoteUrl` (credentials may be embedded). */
export async function createPusher(remoteUrl: string, branch = 'main'): Promise<TestPusher> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-work-'));
  const git = async (...args: string[]): Promise<string> =>
    (await run('git', ['-C', dir, ...args])).stdout.trim();
  await git('init', '--quiet', `--initial-branch=${branch}`);
  await git('config', 'user.email', 'test@flotilla.dev');
  await git('config', 'user.name', 'test');
  return {
    async commit(files, message = 'change') {
      for (const [path, text] of Object.entries(files)) {
        const full = join(dir, path);
        if (text === null) {
          await rm(full, { force: true });
        } else {
          await mkdir(dirname(full), { recursive: true });
          await writeFile(full, text);
        }
      }
      await git('add', '-A');
      await git('commit', '--quiet', '--allow-empty', '-m', message);
      await git('push', '--quiet', remoteUrl, `HEAD:refs/heads/${branch}`);
      return git('rev-parse', 'HEAD');
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
