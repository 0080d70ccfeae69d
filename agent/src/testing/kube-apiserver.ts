// A minimal etcd + kube-apiserver for this package's integration tests, until the shared
// harness in integration-tests/src/env/ can be used from here. Binaries come from
// ~/.cache/flotilla/k8s-<version>/ (FLOTILLA_KUBE_APISERVER / FLOTILLA_ETCD override).
// No controllers run: namespaces never finish deleting and Deployments get no Pods.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { accessSync, constants, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running test API server. */
export interface TestApiServer {
  /** kubeconfig with a system:masters token (insecure-skip-tls-verify). */
  kubeconfigPath: string;
  server: string;
  stop(): Promise<void>;
}

const K8S_VERSION = 'v1.35.4';

/** Paths of the binaries, from env overrides or the shared cache layout. */
export function testBinaries(env: NodeJS.ProcessEnv = process.env): {
  kubeApiserver: string;
  etcd: string;
} {
  const dir = join(
    env.FLOTILLA_CACHE_DIR || join(homedir(), '.cache', 'flotilla'),
    `k8s-${K8S_VERSION}`,
  );
  return {
    kubeApiserver: env.FLOTILLA_KUBE_APISERVER || join(dir, 'kube-apiserver'),
    etcd: env.FLOTILLA_ETCD || join(dir, 'etcd'),
  };
}

/**
 * Why the integration tests cannot run here, or undefined when they can. Under CI=true
 * missing binaries are an error (thrown), elsewhere a skip message.
 */
export function apiServerSkipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const bins = testBinaries(env);
  for (const path of [bins.kubeApiserver, bins.etcd]) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      const msg = `${path} is missing: run integration-tests/tools/prereqs.sh`;
      if (env.CI === 'true') throw new Error(msg);
      return msg;
    }
  }
  return undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() =>
        typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port')),
      );
    });
  });
}

function readyz(port: number, token: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/readyz',
        headers: { authorization: `Bearer ${token}` },
        rejectUnauthorized: false,
        timeout: 2_000,
      },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

function run(bin: string, args: string[], log: string): ChildProcess {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = createWriteStream(log);
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  return child;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts etcd + kube-apiserver on free loopback ports; resolves when /readyz answers 200. */
export async function startTestApiServer(timeoutMs = 90_000): Promise<TestApiServer> {
  const bins = testBinaries();
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-agent-kube-'));
  await mkdir(join(dir, 'certs'));
  const token = randomBytes(24).toString('hex');
  const { publicKey, privateKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  await writeFile(join(dir, 'sa.pub'), publicKey);
  await writeFile(join(dir, 'sa.key'), privateKey, { mode: 0o600 });
  await writeFile(
    join(dir, 'tokens.csv'),
    `${token},flotilla-admin,flotilla-admin,"system:masters"\n`,
    { mode: 0o600 },
  );
  const [etcdPort, port] = [await freePort(), await freePort()];
  const etcd = run(
    bins.etcd,
    [
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${etcdPort}`,
      `--advertise-client-urls=http://127.0.0.1:${etcdPort}`,
      '--listen-peer-urls=http://127.0.0.1:0',
      '--unsafe-no-fsync',
      '--log-level=warn',
    ],
    join(dir, 'etcd.log'),
  );
  const apiserver = run(
    bins.kubeApiserver,
    [
      `--etcd-servers=http://127.0.0.1:${etcdPort}`,
      `--secure-port=${port}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--cert-dir=${join(dir, 'certs')}`,
      `--token-auth-file=${join(dir, 'tokens.csv')}`,
      '--authorization-mode=RBAC',
      '--service-cluster-ip-range=10.0.0.0/24',
      `--service-account-issuer=https://127.0.0.1:${port}`,
      `--service-account-key-file=${join(dir, 'sa.pub')}`,
      `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
      '--disable-admission-plugins=ServiceAccount',
      '--endpoint-reconciler-type=none',
      '--enable-priority-and-fairness=false',
    ],
    join(dir, 'kube-apiserver.log'),
  );
  const stop = async (): Promise<void> => {
    await stopChild(apiserver);
    await stopChild(etcd);
    if (process.env.FLOTILLA_KEEP_TMP !== '1') await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + timeoutMs;
  while (!(await readyz(port, token))) {
    if (apiserver.exitCode !== null || etcd.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(
        `kube-apiserver did not become ready (logs in ${dir}, FLOTILLA_KEEP_TMP=1 keeps them)`,
      );
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  const server = `https://127.0.0.1:${port}`;
  const kubeconfigPath = join(dir, 'kubeconfig.json');
  await writeFile(
    kubeconfigPath,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'admin', user: { token } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: 'admin' } }],
      'current-context': 'test',
    }),
    { mode: 0o600 },
  );
  return { kubeconfigPath, server, stop };
}
