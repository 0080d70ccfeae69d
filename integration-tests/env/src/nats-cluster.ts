// startNatsCluster(): a JetStream cluster of real nats-server processes on loopback ports,
// with routes between every node and a store directory per node, as a production NATS
// cluster of three pods runs. Each node can be stopped (cleanly or SIGKILL) and started
// again on the same ports and store, as a restarted pod would be.
import { accessSync, constants, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrerequisiteMissingError } from './errors.js';
import { removeOnExit, spawnServer, untilReadyOrExit } from './processes.js';
import type { ManagedProcess } from './processes.js';
import { freePort, waitFor } from './util.js';
import { binaryPaths, PREREQS_HINT } from './versions.js';
import { NATS_READY_TIMEOUT_MS } from './nats.js';

/** One node of a TestNatsCluster. */
export interface TestNatsNode {
  /** server_name of the node (flotilla-test-n<i>). */
  name: string;
  /** Client URL of this node alone, e.g. nats://127.0.0.1:4222. */
  url: string;
  /** Monitoring endpoint (/healthz, /jsz, /routez). */
  monitorUrl: string;
  /** True while its process runs. */
  readonly running: boolean;
  /** Its process id while it runs (for RSS figures). */
  readonly pid: number | undefined;
  /** Stops the node: SIGTERM (a clean shutdown), or SIGKILL with kill; ports and store stay. */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** Starts it again on the same ports and store (no-op while running). */
  start(): Promise<void>;
}

/** A running JetStream cluster. */
export interface TestNatsCluster {
  /** Every node's client URL, comma separated: what a client gets to fail over between nodes. */
  url: string;
  nodes: TestNatsNode[];
  /** Stops every node. */
  stop(): Promise<void>;
}

/** Options of startNatsCluster(). */
export interface StartNatsClusterOptions {
  /** Number of nodes (default 3; JetStream needs a majority of them up). */
  size?: number;
  /**
   * Tell clients the other nodes' addresses (default true, as nats-server does). False
   * sets `no_advertise`: a client given one node's URL stays on that node, so stopping it
   * cuts the client off, as a network partition would.
   */
  advertise?: boolean;
}

function healthz(port: number, path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error('healthz request timed out')));
    req.on('error', reject);
  });
}

/**
 * Starts a JetStream cluster of `size` nodes (the cached nats-server binary) and resolves
 * once every node reports /healthz ok with JetStream enabled (a meta leader elected).
 */
export async function startNatsCluster(
  options: StartNatsClusterOptions = {},
): Promise<TestNatsCluster> {
  const size = options.size ?? 3;
  if (!Number.isInteger(size) || size < 1 || size > 9)
    throw new RangeError(`a test NATS cluster has 1 to 9 nodes, got ${size}`);
  const bin = binaryPaths().natsServer;
  try {
    accessSync(bin, constants.X_OK);
  } catch {
    throw new PrerequisiteMissingError(
      'nats-server',
      `${PREREQS_HINT}, or set FLOTILLA_NATS_SERVER`,
      `${bin} not found`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-nats-cluster-'));
  removeOnExit(dir);
  const ports: { client: number; monitor: number; route: number }[] = [];
  // freePort() may hand out a port twice when the machine is short of them (a port freed
  // is free again): every node's ports must differ.
  const taken = new Set<number>();
  const distinctPort = async (): Promise<number> => {
    for (let i = 0; i < 100; i++) {
      const port = await freePort();
      if (!taken.has(port)) return (taken.add(port), port);
    }
    throw new Error('no free loopback port found for the NATS cluster after 100 tries');
  };
  for (let i = 0; i < size; i++)
    ports.push({
      client: await distinctPort(),
      monitor: await distinctPort(),
      route: await distinctPort(),
    });
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.route}`);
  const nodes = ports.map((p, i) => {
    const name = `flotilla-test-n${i}`;
    const conf = join(dir, `${name}.conf`);
    writeFileSync(
      conf,
      [
        `server_name: ${name}`,
        `listen: 127.0.0.1:${p.client}`,
        `http: 127.0.0.1:${p.monitor}`,
        `jetstream { store_dir: ${JSON.stringify(join(dir, name))} }`,
        'cluster {',
        '  name: flotilla-test',
        `  listen: 127.0.0.1:${p.route}`,
        `  routes: [${routes.join(', ')}]`,
        ...(options.advertise === false ? ['  no_advertise: true'] : []),
        '}',
        '',
      ].join('\n'),
    );
    let proc: ManagedProcess | undefined;
    const node: TestNatsNode = {
      name,
      url: `nats://127.0.0.1:${p.client}`,
      monitorUrl: `http://127.0.0.1:${p.monitor}`,
      get running() {
        return proc?.isRunning() ?? false;
      },
      get pid() {
        return proc?.isRunning() ? proc.pid : undefined;
      },
      async start() {
        if (proc?.isRunning()) return;
        proc = spawnServer(`nats-server ${name}`, bin, ['-c', conf], {
          logFile: join(dir, `${name}.log`),
        });
        const started = proc;
        // With JetStream in a cluster, /healthz turns 200 once this node has a meta leader
        // and has caught up with its streams.
        await untilReadyOrExit([started], (signal) =>
          waitFor(() => healthz(p.monitor, '/healthz?js-enabled-only=true'), {
            what: `nats-server ${name} /healthz`,
            timeoutMs: NATS_READY_TIMEOUT_MS,
            intervalMs: 100,
            signal,
          }),
        );
      },
      async stop(stopOptions = {}) {
        // A grace of 0 is a SIGKILL at once.
        await proc?.stop(stopOptions.kill ? 0 : undefined);
      },
    };
    return node;
  });
  // Started together: a node's JetStream waits for a quorum of its peers.
  await Promise.all(nodes.map((n) => n.start()));
  // Streams can be created only once a meta leader is elected: /healthz on every node.
  await Promise.all(
    ports.map((p, i) =>
      waitFor(() => healthz(p.monitor, '/healthz'), {
        what: `nats-server flotilla-test-n${i} JetStream meta leader`,
        timeoutMs: NATS_READY_TIMEOUT_MS,
        intervalMs: 100,
      }),
    ),
  );
  return {
    url: nodes.map((n) => n.url).join(','),
    nodes,
    async stop() {
      await Promise.all(nodes.map((n) => n.stop()));
    },
  };
}
