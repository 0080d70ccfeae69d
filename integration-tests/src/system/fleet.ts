// A whole Flotilla installation as real processes: N Kubernetes API servers, NATS, a
// smart-HTTP Git server holding a fleet repo, one hub and one agent per cluster. Used
// by the end-to-end tests and by the demo, so both exercise exactly the same wiring.
// Every agent acts as its own ServiceAccount (a TokenRequest token), with the RBAC and
// the arguments of the manifests `flotilla cluster add` generates: never as the admin.
// NATS requires TLS (a CA made for the run), as the real install does; the agent process
// gets local directories where its Deployment mounts volumes (the NATS CA's ConfigMap,
// the event buffer's emptyDir).
import { execFile } from 'node:child_process';
import { get as httpsGet } from 'node:https';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import {
  binaryPaths,
  createWorkRepo,
  freePort,
  serviceAccountKubeconfig,
  spawnServer,
  startCluster,
  startGitServer,
  startNats,
  waitFor,
} from '@flotilla/test-env';
import type {
  ManagedProcess,
  TestCluster,
  TestGitServer,
  TestNats,
  WorkRepo,
} from '@flotilla/test-env';
import { applyManifests, parseManifests } from './install.js';
import { agentManifests, createNatsAuthSetup } from '@flotilla/hub';

/** Path of the `flotilla` CLI entry point (hub package). */
export const FLOTILLA_BIN = join(
  dirname(fileURLToPath(import.meta.resolve('@flotilla/hub'))),
  'cli',
  'main.js',
);

/** One cluster's row as `flotilla status -o json` prints it. */
export interface ClusterStatusRow {
  name: string;
  connected: boolean;
  state: string;
  desiredRevision?: string;
  appliedRevision?: string;
  [key: string]: unknown;
}

/** Options of startFleet(). */
export interface FleetOptions {
  /** Cluster names to start (each gets an API server and an agent). */
  clusters: string[];
  /** Files of the fleet repo's first commit (path → content). */
  repoFiles: Record<string, string>;
  /** Directory for process logs (kept). Default: a temp dir. */
  logDir?: string;
  /** Progress messages (the demo prints them). */
  onProgress?: (message: string) => void;
  /** Hub poll interval for the Git source. Default "1s". */
  pollInterval?: string;
  /**
   * Plaintext hub and shared token, no per-cluster identities (default false). The
   * default is the real install flow: `flotilla cluster add` → the generated manifests
   * applied to the cluster's API server → the agent trades the bootstrap token for a
   * certificate and connects with mTLS.
   */
  insecure?: boolean;
  /** Extra hub.yaml lines (e.g. identity settings). */
  hubConfigExtra?: string[];
  /** Extra settings of hub.yaml's `render:` (e.g. { sopsAgeKeyFile: path }). */
  render?: Record<string, string>;
  /**
   * Clusters whose agent is installed in namespaced mode (`cluster add --namespaces`), with
   * their namespaces; the harness creates those as the cluster's admin would first.
   */
  namespaced?: Record<string, string[]>;
  /**
   * Puts something between the parts (a fault proxy): called once per link with its
   * upstream host:port, returns the host:port to dial instead. Links: the agents to the
   * hub's gRPC, the agents to NATS, the hub to NATS.
   */
  route?: (link: FleetLink, upstream: string) => Promise<string>;
}

/** A network link of the installation (see FleetOptions.route). */
export type FleetLink = 'agent-hub' | 'agent-nats' | 'hub-nats';

/** A running installation. */
export interface Fleet {
  clusters: Map<string, TestCluster>;
  nats: TestNats;
  git: TestGitServer;
  repo: WorkRepo;
  repoUrl: string;
  /** SHA of the first commit. */
  firstCommit: string;
  hub: ManagedProcess;
  hubHttpUrl: string;
  hubGrpcAddress: string;
  agents: Map<string, ManagedProcess>;
  /** The kubeconfig each agent runs with: its ServiceAccount's token, never the admin's. */
  agentKubeconfigs: Map<string, string>;
  logDir: string;
  /** The hub's identity directory (ca.crt, admin.crt, admin.key); "" when insecure. */
  adminDir: string;
  /** Where `flotilla cluster add` wrote a cluster's agent.yaml, token and ca.crt. */
  installDir(cluster: string): string;
  /**
   * Runs `flotilla <args>` against this hub (as the first administrator, or with `env`'s
   * FLOTILLA_ADMIN_DIR / FLOTILLA_TOKEN); resolves stdout, rejects with stderr on a non-zero exit.
   */
  cli(args: string[], env?: NodeJS.ProcessEnv): Promise<string>;
  /** `flotilla status -o json`, parsed. */
  status(): Promise<ClusterStatusRow[]>;
  /** Where an agent's event buffer lives (its Deployment's emptyDir, a local directory here). */
  eventBufferDir(cluster: string): string;
  /** Stops a cluster's agent (SIGKILL with kill, as a crash would) and starts it again with the same arguments. */
  restartAgent(cluster: string, options?: { kill?: boolean }): Promise<void>;
  /** Waits until every cluster reports `revision` as applied and state Ready. */
  waitForRevision(revision: string, timeoutMs?: number): Promise<ClusterStatusRow[]>;
  /**
   * Stops the hub and starts it again with the same config and state; resolves once it is
   * ready (hub is replaced). With kill, the hub gets SIGKILL: no shutdown of any kind.
   */
  restartHub(opts?: { kill?: boolean }): Promise<void>;
  /** Stops agents, hub, then the servers; idempotent. */
  stop(): Promise<void>;
}

/** Reads every file under dir into a path → content map (for the example fleet repo). */
export async function readTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const p = join(d, entry.name);
      if (entry.isDirectory()) await walk(p);
      else if (entry.isFile()) out[relative(dir, p)] = await readFile(p, 'utf8');
    }
  };
  await walk(dir);
  return out;
}

/** true when GET url answers 2xx; https is verified against caFile when given. */
async function httpOk(url: string, caFile: string | undefined): Promise<boolean> {
  if (!caFile) return (await fetch(url)).ok;
  const ca = await readFile(caFile);
  return new Promise((resolve, reject) => {
    httpsGet(url, { ca }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 300);
    }).on('error', reject);
  });
}

type PodSpec = {
  containers: { args?: string[]; volumeMounts?: { name: string; mountPath: string }[] }[];
  volumes?: { name: string; emptyDir?: object; configMap?: { name: string } }[];
};

/**
 * The agent container's arguments in the generated Deployment, for a local process:
 * each mounted volume becomes a directory under dir (a ConfigMap's keys as files, an
 * emptyDir empty), and arguments naming a mount path name that directory instead.
 */
async function deploymentArgs(manifests: string, dir: string): Promise<string[]> {
  const objects = parseManifests(manifests);
  const dep = objects.find((o) => o.kind === 'Deployment') as unknown as
    { spec: { template: { spec: PodSpec } } } | undefined;
  const pod = dep?.spec.template.spec;
  const args = pod?.containers[0]?.args;
  if (!pod || !args) throw new Error('the agent manifests hold no Deployment with container args');
  const mapped: [string, string][] = [];
  for (const mount of pod.containers[0]?.volumeMounts ?? []) {
    const volume = pod.volumes?.find((v) => v.name === mount.name);
    if (!volume || mount.mountPath === '/tmp') continue;
    const local = join(dir, mount.name);
    await mkdir(local, { recursive: true });
    if (volume.configMap) {
      const cm = objects.find(
        (o) => o.kind === 'ConfigMap' && o.metadata?.name === volume.configMap?.name,
      ) as unknown as { data?: Record<string, string> } | undefined;
      if (!cm)
        throw new Error(
          `the agent manifests mount ConfigMap ${volume.configMap.name} but hold none`,
        );
      for (const [key, value] of Object.entries(cm.data ?? {}))
        await writeFile(join(local, key), value);
    }
    mapped.push([mount.mountPath, local]);
  }
  return args.map((a) => {
    const m = mapped.find(([path]) => a === path || a.startsWith(`${path}/`));
    return m ? m[1] + a.slice(m[0].length) : a;
  });
}

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [FLOTILLA_BIN, ...args],
      { env: { ...process.env, ...env } },
      (err, stdout, stderr) => {
        if (err)
          reject(new Error(`flotilla ${args.join(' ')} failed (${err.code}): ${stderr || stdout}`));
        else resolve(stdout);
      },
    );
  });
}

/** Starts everything, in dependency order, and returns once the hub is ready. */
export async function startFleet(options: FleetOptions): Promise<Fleet> {
  const progress = options.onProgress ?? (() => undefined);
  const logDir = options.logDir ?? (await mkdtemp(join(tmpdir(), 'flotilla-fleet-logs-')));
  const work = await mkdtemp(join(tmpdir(), 'flotilla-fleet-'));
  await mkdir(logDir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    while (stops.length > 0)
      await stops
        .pop()?.()
        .catch(() => undefined);
    await rm(work, { recursive: true, force: true });
  };
  try {
    progress(`starting NATS, a Git server and ${options.clusters.length} Kubernetes API servers`);
    // The real install also secures NATS: operator mode, the hub's own credentials, and
    // a user JWT per agent (issued at registration) that may publish only its own events.
    const natsAuth =
      options.insecure === true
        ? undefined
        : createNatsAuthSetup({ resolverDir: join(work, 'nats-jwt') });
    const [nats, git, ...clusterList] = await Promise.all([
      startNats({ tls: true, ...(natsAuth ? { config: natsAuth.serverConfig } : {}) }),
      startGitServer(),
      ...options.clusters.map((name) => startCluster({ name, logDir })),
    ]);
    stops.push(
      () => nats.stop(),
      () => git.stop(),
      ...clusterList.map((c) => () => c.stop()),
    );
    const clusters = new Map(clusterList.map((c) => [c.name, c]));
    progress(
      `Kubernetes API servers ready: ${clusterList.map((c) => `${c.name} ${c.server}`).join(', ')}`,
    );

    const repoUrl = await git.createRepo('fleet');
    const repo = await createWorkRepo(repoUrl);
    stops.push(() => repo.dispose());
    await repo.writeFiles(options.repoFiles);
    const firstCommit = await repo.commitAndPush('Initial fleet');
    progress(`fleet repo pushed to ${repoUrl} at ${firstCommit.slice(0, 12)}`);

    const token = 'flotilla-test-token-' + Math.random().toString(36).slice(2);
    const tokenFile = join(work, 'agent-token');
    await writeFile(tokenFile, token, { mode: 0o600 });
    const [grpcPort, httpPort] = [await freePort(), await freePort()];
    const hubGrpcAddress = `127.0.0.1:${grpcPort}`;
    // Where each side dials (the same, unless a test routes a link through a proxy).
    const natsHostPort = nats.url.replace(/^[a-z]+:\/\//, '');
    const natsScheme = nats.url.slice(0, nats.url.length - natsHostPort.length);
    const routed = async (link: FleetLink, upstream: string): Promise<string> =>
      options.route ? options.route(link, upstream) : upstream;
    const hubNatsUrl = `${natsScheme}${await routed('hub-nats', natsHostPort)}`;
    const agentNatsUrl = `${natsScheme}${await routed('agent-nats', natsHostPort)}`;
    const agentHubAddress = await routed('agent-hub', hubGrpcAddress);
    const insecure = options.insecure === true;
    const hubHttpUrl = `${insecure ? 'http' : 'https'}://127.0.0.1:${httpPort}`;
    const adminDir = insecure ? '' : join(work, 'hub-identity');
    const hubConfig = join(work, 'hub.yaml');
    const tools = binaryPaths();
    if (natsAuth) {
      await writeFile(join(work, 'hub.creds'), natsAuth.hubCreds, { mode: 0o600 });
      await writeFile(join(work, 'account.seed'), natsAuth.accountSeed, { mode: 0o600 });
      await writeFile(join(work, 'system.creds'), natsAuth.systemCreds, { mode: 0o600 });
      await writeFile(join(work, 'operator.seed'), natsAuth.operatorSigningSeed, { mode: 0o600 });
    }
    await writeFile(
      hubConfig,
      [
        'sources:',
        '  - name: fleet',
        `    url: ${repoUrl}`,
        '    branch: main',
        `    pollInterval: ${options.pollInterval ?? '1s'}`,
        'grpc:',
        `  listen: ${hubGrpcAddress}`,
        'http:',
        `  listen: 127.0.0.1:${httpPort}`,
        'nats:',
        `  url: ${hubNatsUrl}`,
        `  caFile: ${nats.caFile as string}`,
        ...(natsAuth
          ? [
              `  credsFile: ${join(work, 'hub.creds')}`,
              `  accountSeedFile: ${join(work, 'account.seed')}`,
              `  systemCredsFile: ${join(work, 'system.creds')}`,
              `  operatorSigningKeyFile: ${join(work, 'operator.seed')}`,
            ]
          : []),
        // The pinned kustomize, helm and sops of the test environment render Kustomize and
        // Helm bundles and SOPS-encrypted files.
        'render:',
        `  kustomizePath: ${tools.kustomize}`,
        `  helmPath: ${tools.helm}`,
        `  sopsPath: ${tools.sops}`,
        ...Object.entries(options.render ?? {}).map(([k, v]) => `  ${k}: ${v}`),
        // hubConfigExtra continues the identity (or auth) block below, so it must follow it.
        ...(insecure
          ? ['insecure: true', 'auth:', `  tokenFile: ${tokenFile}`]
          : ['identity:', `  stateDir: ${adminDir}`]),
        ...(options.hubConfigExtra ?? []),
        `cacheDir: ${join(work, 'hub-cache')}`,
        'heartbeatInterval: 2s',
        'offlineAfter: 10s',
        '',
      ].join('\n'),
    );
    progress('starting the hub');
    let hub!: ManagedProcess;
    let hubStarts = 0;
    const startHub = async (): Promise<ManagedProcess> => {
      // A restarted hub logs to hub-2.log, ... so each run's log stays readable.
      hubStarts += 1;
      hub = spawnServer('hub', process.execPath, [FLOTILLA_BIN, 'hub', '--config', hubConfig], {
        logFile: join(logDir, hubStarts === 1 ? 'hub.log' : `hub-${hubStarts}.log`),
      });
      const started = hub;
      await waitFor(
        async () => {
          if (!started.isRunning())
            throw new Error(`hub exited; log ${started.logFile}:\n${started.logTail()}`);
          return httpOk(`${hubHttpUrl}/readyz`, adminDir ? join(adminDir, 'ca.crt') : undefined);
        },
        {
          what: `hub ready at ${hubHttpUrl}/readyz (log ${started.logFile})`,
          timeoutMs: 60_000,
          intervalMs: 250,
        },
      );
      return started;
    };
    stops.push(() => hub.stop(10_000));
    await startHub();

    const cliEnv: NodeJS.ProcessEnv = insecure
      ? { FLOTILLA_HUB_URL: hubHttpUrl }
      : {
          FLOTILLA_HUB_URL: hubHttpUrl,
          FLOTILLA_HUB: hubGrpcAddress,
          FLOTILLA_ADMIN_DIR: adminDir,
        };
    const cli = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> =>
      runCli(args, { ...cliEnv, ...env });
    const installDir = (name: string): string => join(work, `install-${name}`);
    const agents = new Map<string, ManagedProcess>();
    const agentKubeconfigs = new Map<string, string>();
    const agentArgs = new Map<string, string[]>();
    const agentStarts = new Map<string, number>();
    const natsCaPem = nats.caPem as string;
    const startAgent = (name: string): ManagedProcess => {
      const n = (agentStarts.get(name) ?? 0) + 1;
      agentStarts.set(name, n);
      const agent = spawnServer(`agent-${name}`, process.execPath, agentArgs.get(name) ?? [], {
        logFile: join(logDir, n === 1 ? `agent-${name}.log` : `agent-${name}-${n}.log`),
      });
      agents.set(name, agent);
      return agent;
    };
    for (const [name, cluster] of clusters) {
      const namespaces = options.namespaced?.[name] ?? [];
      if (namespaces.length > 0)
        await applyManifests(
          cluster.kubeconfigPath,
          namespaces
            .map((ns) => `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${ns}\n`)
            .join('---\n'),
        );
      const nsFlag = namespaces.length > 0 ? ['--namespaces', namespaces.join(',')] : [];
      let manifests: string;
      if (insecure) {
        // No registration without TLS: the same RBAC, but no bootstrap Secret to read.
        manifests = agentManifests({
          cluster: name,
          hub: agentHubAddress,
          nats: agentNatsUrl,
          natsCaPem,
          namespaces,
          token: 'unused-in-insecure-mode',
          caPem: '',
        });
        manifests = parseManifests(manifests)
          .filter((o) => o.kind !== 'Secret')
          .map((o) => stringify(o))
          .join('---\n');
      } else {
        progress(`flotilla cluster add ${name}; applying its agent manifests to ${cluster.server}`);
        await cli([
          'cluster',
          'add',
          name,
          '--output-dir',
          installDir(name),
          '--agent-hub',
          agentHubAddress,
          '--nats',
          agentNatsUrl,
          '--nats-ca-file',
          nats.caFile as string,
          ...nsFlag,
        ]);
        manifests = await readFile(join(installDir(name), 'agent.yaml'), 'utf8');
      }
      await applyManifests(cluster.kubeconfigPath, manifests);
      const sa = await serviceAccountKubeconfig(cluster, {
        namespace: 'flotilla-system',
        name: 'flotilla-agent',
        dir: join(work, `agent-${name}`),
      });
      stops.push(() => sa.stop());
      agentKubeconfigs.set(name, sa.kubeconfigPath);
      progress(
        `starting the agent of ${name} as ServiceAccount flotilla-system/flotilla-agent (token from the TokenRequest API, valid until ${sa.expiresAt().toISOString()}, refreshed at 80 % of its lifetime)`,
      );
      // The arguments the generated Deployment gives the agent, run here as a process.
      const auth = insecure ? ['--token-file', tokenFile, '--insecure'] : [];
      agentArgs.set(name, [
        FLOTILLA_BIN,
        'agent',
        ...(await deploymentArgs(manifests, join(work, `agent-${name}`, 'volumes'))),
        '--kubeconfig',
        sa.kubeconfigPath,
        ...auth,
      ]);
      startAgent(name);
      stops.push(() => agents.get(name)?.stop(10_000) ?? Promise.resolve());
    }

    const status = async (): Promise<ClusterStatusRow[]> => {
      const parsed = JSON.parse(await cli(['status', '-o', 'json'])) as
        { clusters: ClusterStatusRow[] } | ClusterStatusRow[];
      return Array.isArray(parsed) ? parsed : parsed.clusters;
    };
    const waitForRevision = (revision: string, timeoutMs = 60_000): Promise<ClusterStatusRow[]> =>
      waitFor(
        async () => {
          const rows = await status();
          const done = options.clusters.every((name) =>
            rows.some(
              (r) => r.name === name && r.appliedRevision === revision && r.state === 'Ready',
            ),
          );
          return done ? rows : false;
        },
        {
          what: `every cluster Ready at ${revision.slice(0, 12)} (logs in ${logDir})`,
          timeoutMs,
          intervalMs: 250,
        },
      );
    const fleet: Fleet = {
      clusters,
      nats,
      git,
      repo,
      repoUrl,
      firstCommit,
      hub,
      hubHttpUrl,
      hubGrpcAddress,
      agents,
      agentKubeconfigs,
      logDir,
      adminDir,
      installDir,
      eventBufferDir: (name) => join(work, `agent-${name}`, 'volumes', 'events'),
      restartAgent: async (name, restart = {}) => {
        await agents.get(name)?.stop(restart.kill ? 0 : 10_000);
        startAgent(name);
      },
      cli,
      status,
      waitForRevision,
      stop,
      restartHub: async (opts = {}) => {
        await hub.stop(opts.kill ? 0 : 10_000);
        fleet.hub = await startHub();
      },
    };
    return fleet;
  } catch (err) {
    await stop();
    throw err;
  }
}
