// A real hub for simulated fleets: nats-server, a smart-HTTP Git server holding a
// generated fleet repo, and `flotilla hub` as its own process with a push webhook — no
// Kubernetes (simulated agents have none). Two modes: "tls" is the real install (TLS,
// per-cluster identities registered with bootstrap tokens, NATS decentralized auth);
// "insecure" is plaintext with a shared agent token, for large benchmarks where 10,000
// RSA key generations would measure the simulator rather than the hub.
import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createWorkRepo,
  freePort,
  spawnServer,
  startGitServer,
  startNats,
  waitFor,
} from '@flotilla/test-env';
import type { ManagedProcess, TestGitServer, TestNats, WorkRepo } from '@flotilla/test-env';
import { createNatsAuthSetup } from '@flotilla/hub';
import { FLOTILLA_BIN } from '../system/fleet.js';
import type { ClusterStatusRow } from '../system/fleet.js';

/** Options of startSimHub(). */
export interface SimHubOptions {
  /** Files of the fleet repo's first commit. */
  repoFiles: Record<string, string>;
  mode: 'tls' | 'insecure';
  /** Directory for logs (kept); default a temporary one. */
  logDir?: string;
  /** Node.js arguments for the hub process (e.g. --cpu-prof). */
  hubNodeArgs?: string[];
  /** Extra environment of the hub process. */
  hubEnv?: NodeJS.ProcessEnv;
  /** Git poll interval (default 1h: pushes arrive by webhook). */
  pollInterval?: string;
  /** The hub's grpc.sendBudget (e.g. "25ms"); default the hub's. */
  sendBudget?: string;
  /** hub.yaml lines added at the top level (e.g. "heartbeatInterval: 2s"). */
  hubConfigExtra?: string[];
}

/** The running hub and its servers. */
export interface SimHub {
  nats: TestNats;
  git: TestGitServer;
  repo: WorkRepo;
  repoUrl: string;
  firstCommit: string;
  /** The hub process (replaced by restartHub). */
  hub: ManagedProcess;
  grpcAddress: string;
  httpUrl: string;
  /** Shared agent token (insecure mode). */
  agentToken: string;
  /** The hub's identity directory with ca.crt, admin.crt, admin.key (tls mode; "" otherwise). */
  adminDir: string;
  logDir: string;
  /** Commits and pushes `files`, then sends the signed push webhook; returns the commit and when the webhook was sent (wall ms). */
  push(
    files: Record<string, string>,
    message: string,
  ): Promise<{ revision: string; sentAt: number }>;
  /** GET of the hub's HTTP API, parsed (admin certificate in tls mode). */
  api<T>(path: string): Promise<T>;
  /** Runs `flotilla <args>` against this hub; resolves stdout. */
  cli(args: string[]): Promise<string>;
  /** `flotilla status -o json`, parsed. */
  status(): Promise<ClusterStatusRow[]>;
  /** SIGTERM (or SIGKILL with kill) and wait for the exit. */
  stopHub(opts?: { kill?: boolean }): Promise<void>;
  /** Starts the hub again with the same config and state; resolves once /readyz answers. */
  startHub(): Promise<void>;
  /** Stops the hub and every server; idempotent. */
  stop(): Promise<void>;
}

/** Webhook secret of the fleet source. */
const WEBHOOK_SECRET = 'sim-webhook-secret';

/** Starts NATS, Git and the hub; resolves once the hub is ready (the first commit rendered). */
export async function startSimHub(options: SimHubOptions): Promise<SimHub> {
  const work = await mkdtemp(join(tmpdir(), 'flotilla-simhub-'));
  const logDir = options.logDir ?? join(work, 'logs');
  await mkdir(logDir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async (): Promise<void> => {
    while (stops.length > 0)
      await stops
        .pop()?.()
        .catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  };
  try {
    const tls = options.mode === 'tls';
    const natsAuth = tls ? createNatsAuthSetup({ resolverDir: join(work, 'nats-jwt') }) : undefined;
    const [nats, git] = await Promise.all([
      startNats(natsAuth ? { config: natsAuth.serverConfig } : {}),
      startGitServer(),
    ]);
    stops.push(
      () => nats.stop({ kill: true, removeStore: true }),
      () => git.stop(),
    );
    const repoUrl = await git.createRepo('fleet');
    const repo = await createWorkRepo(repoUrl);
    stops.push(() => repo.dispose());
    await repo.writeFiles(options.repoFiles);
    const firstCommit = await repo.commitAndPush('Initial fleet');

    const agentToken = 'sim-agent-token-' + Math.random().toString(36).slice(2);
    await writeFile(join(work, 'agent-token'), agentToken, { mode: 0o600 });
    await writeFile(join(work, 'webhook-secret'), WEBHOOK_SECRET, { mode: 0o600 });
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const grpcAddress = `127.0.0.1:${grpcPort}`;
    const httpUrl = `${tls ? 'https' : 'http'}://127.0.0.1:${httpPort}`;
    const adminDir = tls ? join(work, 'hub-identity') : '';
    if (natsAuth) {
      await writeFile(join(work, 'hub.creds'), natsAuth.hubCreds, { mode: 0o600 });
      await writeFile(join(work, 'account.seed'), natsAuth.accountSeed, { mode: 0o600 });
    }
    const config = join(work, 'hub.yaml');
    await writeFile(
      config,
      [
        'sources:',
        '  - name: fleet',
        `    url: ${repoUrl}`,
        '    branch: main',
        `    pollInterval: ${options.pollInterval ?? '1h'}`,
        '    webhook:',
        `      secretFile: ${join(work, 'webhook-secret')}`,
        'grpc:',
        `  listen: ${grpcAddress}`,
        ...(options.sendBudget ? [`  sendBudget: ${options.sendBudget}`] : []),
        'http:',
        `  listen: 127.0.0.1:${httpPort}`,
        'nats:',
        `  url: ${nats.url}`,
        ...(natsAuth
          ? [
              `  credsFile: ${join(work, 'hub.creds')}`,
              `  accountSeedFile: ${join(work, 'account.seed')}`,
            ]
          : []),
        ...(tls
          ? ['identity:', `  stateDir: ${adminDir}`]
          : ['insecure: true', 'auth:', `  tokenFile: ${join(work, 'agent-token')}`]),
        `cacheDir: ${join(work, 'hub-cache')}`,
        ...(options.hubConfigExtra ?? []),
        '',
      ].join('\n'),
    );

    const caFile = tls ? join(adminDir, 'ca.crt') : '';
    const tlsGet = async (path: string): Promise<{ status: number; body: string }> => {
      const [ca, cert, key] = await Promise.all(
        [caFile, join(adminDir, 'admin.crt'), join(adminDir, 'admin.key')].map((f) => readFile(f)),
      );
      return new Promise((resolve, reject) => {
        const req = httpsRequest(`${httpUrl}${path}`, { ca, cert, key }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', reject);
        });
        req.on('error', reject);
        req.end();
      });
    };
    const get = async (path: string): Promise<{ status: number; body: string }> => {
      if (tls) return tlsGet(path);
      const res = await fetch(`${httpUrl}${path}`);
      return { status: res.status, body: await res.text() };
    };

    let hubStarts = 0;
    let hub!: ManagedProcess;
    const startHub = async (): Promise<void> => {
      hubStarts += 1;
      const started = spawnServer(
        'hub',
        process.execPath,
        [...(options.hubNodeArgs ?? []), FLOTILLA_BIN, 'hub', '--config', config],
        {
          logFile: join(logDir, hubStarts === 1 ? 'hub.log' : `hub-${hubStarts}.log`),
          cwd: logDir,
          env: { ...process.env, ...options.hubEnv },
        },
      );
      hub = started;
      sim.hub = started;
      await waitFor(
        async () => {
          if (!started.isRunning())
            throw new Error(`hub exited; log ${started.logFile}:\n${started.logTail()}`);
          // Before the first start the CA does not exist yet: not ready.
          if (tls && hubStarts === 1 && !(await readFile(caFile).catch(() => undefined)))
            return false;
          return (await get('/readyz')).status === 200;
        },
        {
          what: `hub ready at ${httpUrl}/readyz (log ${started.logFile})`,
          timeoutMs: 120_000,
          intervalMs: 50,
        },
      );
    };
    stops.push(() => hub.stop(10_000));

    const cliEnv: NodeJS.ProcessEnv = {
      ...process.env,
      FLOTILLA_HUB_URL: httpUrl,
      ...(tls ? { FLOTILLA_HUB: grpcAddress, FLOTILLA_ADMIN_DIR: adminDir } : {}),
    };
    const cli = (args: string[]): Promise<string> =>
      new Promise((resolve, reject) =>
        execFile(
          process.execPath,
          [FLOTILLA_BIN, ...args],
          { env: cliEnv, maxBuffer: 256 * 1024 * 1024 },
          (err, stdout, stderr) =>
            err
              ? reject(new Error(`flotilla ${args.join(' ')}: ${stderr || stdout}`))
              : resolve(stdout),
        ),
      );

    const sim: SimHub = {
      nats,
      git,
      repo,
      repoUrl,
      firstCommit,
      hub,
      grpcAddress,
      httpUrl,
      agentToken,
      adminDir,
      logDir,
      async push(files, message) {
        await repo.writeFiles(files);
        const revision = await repo.commitAndPush(message);
        const body = JSON.stringify({
          ref: 'refs/heads/main',
          after: revision,
          repository: { clone_url: repoUrl, html_url: repoUrl },
        });
        const sentAt = performance.timeOrigin + performance.now();
        const res = await fetchWebhook(httpUrl, body, caFile);
        if (res !== 202) throw new Error(`webhook answered ${res}`);
        return { revision, sentAt };
      },
      async api<T>(path: string): Promise<T> {
        const { status, body } = await get(path);
        if (status !== 200) throw new Error(`GET ${path}: ${status} ${body.slice(0, 200)}`);
        return JSON.parse(body) as T;
      },
      cli,
      async status() {
        const parsed = JSON.parse(await cli(['status', '-o', 'json'])) as
          { clusters: ClusterStatusRow[] } | ClusterStatusRow[];
        return Array.isArray(parsed) ? parsed : parsed.clusters;
      },
      stopHub: (opts) => hub.stop(opts?.kill ? 0 : 10_000),
      startHub,
      stop: stopAll,
    };
    await startHub();
    return sim;
  } catch (err) {
    await stopAll();
    throw err;
  }
}

/** POSTs a GitHub push webhook signed with the source's secret; returns the HTTP status. */
async function fetchWebhook(httpUrl: string, body: string, caFile: string): Promise<number> {
  const headers = {
    'content-type': 'application/json',
    'x-github-event': 'push',
    'x-hub-signature-256': `sha256=${createHmac('sha256', WEBHOOK_SECRET).update(body).digest('hex')}`,
  };
  const url = `${httpUrl}/api/v1/webhooks/fleet`;
  if (!caFile) return (await fetch(url, { method: 'POST', headers, body })).status;
  const ca = await readFile(caFile);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'POST', headers, ca }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end(body);
  });
}
