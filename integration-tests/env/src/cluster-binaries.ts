// The "binaries" cluster: one etcd and one kube-apiserver on loopback ports, the way
// controller-runtime's envtest runs them. No controllers, scheduler or kubelet: objects
// are stored and validated, nothing reconciles them (write status subresources instead).
import { generateKeyPair, randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ServerStartError } from './errors.js';
import { spawnServer, untilReadyOrExit } from './processes.js';
import type { ManagedProcess } from './processes.js';
import { freePort, waitFor } from './util.js';
import type { BinaryPaths } from './versions.js';

/** How long an apiserver may take to answer /readyz (three start at once on 2 cores). */
export const APISERVER_READY_TIMEOUT_MS = 90_000;
const PORT_ATTEMPTS = 3;

/** A running etcd + kube-apiserver pair. */
export interface BinariesCluster {
  server: string;
  kubeconfigPath: string;
  token: string;
  stop(): Promise<void>;
}

// etcd tuned for throwaway data: no fsync (the data dies with the test), a small
// backend quota and warn-level logs keep three instances cheap on a small machine.
function etcdArgs(dataDir: string, clientPort: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  return [
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    // Port 0: a single-member cluster never talks to peers, so let the kernel pick.
    '--listen-peer-urls=http://127.0.0.1:0',
    '--unsafe-no-fsync',
    '--quota-backend-bytes=268435456',
    '--snapshot-count=10000',
    '--log-level=warn',
  ];
}

function apiserverArgs(dir: string, etcdPort: number, port: number): string[] {
  return [
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
    // No controller-manager creates default ServiceAccounts; the plugin would reject Pods.
    '--disable-admission-plugins=ServiceAccount',
    '--allow-privileged=true',
    // No kubelet: nothing would ever be an endpoint of the kubernetes Service.
    '--endpoint-reconciler-type=none',
    // Tests send few requests; APF's queues and its bootstrap objects only cost start time.
    '--enable-priority-and-fairness=false',
    '--profiling=false',
    // Appended last so they win: feature gates or tuning for one run without a code change.
    ...(process.env.FLOTILLA_APISERVER_ARGS?.split(/\s+/).filter(Boolean) ?? []),
  ];
}

async function writeCredentials(dir: string, token: string): Promise<void> {
  const { publicKey, privateKey } = await new Promise<{ publicKey: string; privateKey: string }>(
    (resolve, reject) =>
      generateKeyPair(
        'rsa',
        {
          modulusLength: 2048,
          publicKeyEncoding: { type: 'spki', format: 'pem' },
          privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
        },
        (err, pub, priv) => (err ? reject(err) : resolve({ publicKey: pub, privateKey: priv })),
      ),
  );
  await writeFile(join(dir, 'sa.pub'), publicKey);
  await writeFile(join(dir, 'sa.key'), privateKey, { mode: 0o600 });
  // token,user,uid,"group1,group2": system:masters bypasses RBAC.
  await writeFile(
    join(dir, 'tokens.csv'),
    `${token},flotilla-admin,flotilla-admin,"system:masters"\n`,
    { mode: 0o600 },
  );
}

function readyz(port: number, token: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = request(
      // The serving cert is generated at start; the probe only needs liveness, so the
      // kubeconfig (not the probe) carries the CA.
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
    req.on('timeout', () => req.destroy(new Error('readyz request timed out')));
    req.on('error', reject);
    req.end();
  });
}

function kubeconfig(name: string, server: string, caPem: string, token: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name,
        cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') },
      },
    ],
    users: [{ name: 'flotilla-admin', user: { token } }],
    contexts: [{ name, context: { cluster: name, user: 'flotilla-admin', namespace: 'default' } }],
    'current-context': name,
  });
}

async function startOnce(
  name: string,
  dir: string,
  logDir: string,
  bins: BinaryPaths,
  token: string,
  attempt: number,
): Promise<BinariesCluster> {
  const [etcdPort, port] = [await freePort(), await freePort()];
  const children: ManagedProcess[] = [];
  // The data is thrown away, so nothing is owed a graceful shutdown: kube-apiserver
  // would spend ~3 s draining on SIGTERM. etcd exits at once on SIGTERM.
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((c) => c.stop(0)));
  };
  try {
    // Both start at once: the apiserver retries etcd until it answers, which is faster
    // than waiting for etcd health first.
    const etcd = spawnServer(
      `etcd (${name})`,
      bins.etcd,
      etcdArgs(join(dir, `etcd-${attempt}`), etcdPort),
      { logFile: join(logDir, 'etcd.log') },
    );
    children.push(etcd);
    const apiserver = spawnServer(
      `kube-apiserver (${name})`,
      bins.kubeApiserver,
      apiserverArgs(dir, etcdPort, port),
      {
        logFile: join(logDir, 'kube-apiserver.log'),
      },
    );
    children.push(apiserver);
    // A timeout reports the apiserver's log; an early exit reports the exiting one's.
    await untilReadyOrExit([apiserver, etcd], (signal) =>
      waitFor(() => readyz(port, token), {
        what: `kube-apiserver ${name} /readyz`,
        timeoutMs: APISERVER_READY_TIMEOUT_MS,
        intervalMs: 200,
        signal,
      }),
    );
    const server = `https://127.0.0.1:${port}`;
    // apiserver.crt holds the serving cert followed by its self-signed CA.
    const caPem = await readFile(join(dir, 'certs', 'apiserver.crt'), 'utf8');
    const kubeconfigPath = join(dir, 'kubeconfig.yaml');
    await writeFile(kubeconfigPath, kubeconfig(name, server, caPem, token), { mode: 0o600 });
    return { server, kubeconfigPath, token, stop };
  } catch (err) {
    await stop();
    // The logs stay for the error message to point at; the etcd data is just bulk.
    await rm(join(dir, `etcd-${attempt}`), { recursive: true, force: true });
    throw err;
  }
}

/**
 * Starts etcd + kube-apiserver under `dir` (data, certs, kubeconfig) with logs in
 * `logDir`. A port taken between freePort() and the bind is retried with new ports.
 */
export async function startBinariesCluster(
  name: string,
  dir: string,
  logDir: string,
  bins: BinaryPaths,
): Promise<BinariesCluster> {
  await mkdir(join(dir, 'certs'), { recursive: true });
  await mkdir(logDir, { recursive: true });
  const token = randomBytes(24).toString('hex');
  await writeCredentials(dir, token);
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(name, dir, logDir, bins, token, attempt);
    } catch (err) {
      const portRace =
        err instanceof ServerStartError && /address already in use/.test(err.message);
      if (!portRace || attempt >= PORT_ATTEMPTS) throw err;
    }
  }
}
