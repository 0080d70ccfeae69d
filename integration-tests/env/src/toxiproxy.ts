// A real TCP fault proxy between the parts of a test installation: Toxiproxy's server
// (built by tools/build-toxiproxy.sh) on a loopback port, driven through its HTTP API.
// A proxy listens on its own loopback port and forwards to an upstream; toxics add
// latency, cap bandwidth, reset connections or hold them half-open, and disabling a
// proxy partitions the link (its connections are closed and new ones refused).
import { accessSync, constants } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrerequisiteMissingError } from './errors.js';
import { removeOnExit, spawnServer, untilReadyOrExit } from './processes.js';
import { freePort, waitFor } from './util.js';
import { binaryPaths, PREREQS_HINT } from './versions.js';

/** One toxic as Toxiproxy names them (see its README): latency, bandwidth, reset_peer, timeout, … */
export interface Toxic {
  type: 'latency' | 'bandwidth' | 'reset_peer' | 'timeout' | 'slow_close' | 'limit_data';
  /** Both directions when absent (two toxics are added). */
  stream?: 'upstream' | 'downstream';
  attributes: Record<string, number>;
}

/** A link through the proxy. */
export interface TestProxy {
  name: string;
  /** host:port clients dial instead of the upstream. */
  listen: string;
  upstream: string;
  /** Adds a toxic (both directions unless `stream` says one). */
  add(toxic: Toxic): Promise<void>;
  /** Removes every toxic and enables the link. */
  clear(): Promise<void>;
  /** Disabled: open connections are closed and new ones refused (a partition). */
  setEnabled(enabled: boolean): Promise<void>;
}

/** A running Toxiproxy server. */
export interface TestToxiproxy {
  /** Creates a proxy to `upstream` (host:port) on a free loopback port. */
  proxy(name: string, upstream: string): Promise<TestProxy>;
  stop(): Promise<void>;
}

/** Starts the cached Toxiproxy server; PrerequisiteMissingError when it was not built. */
export async function startToxiproxy(): Promise<TestToxiproxy> {
  const program = binaryPaths().toxiproxy;
  try {
    accessSync(program, constants.X_OK);
  } catch {
    throw new PrerequisiteMissingError('toxiproxy', PREREQS_HINT, `${program} not found`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-toxiproxy-'));
  removeOnExit(dir);
  const port = await freePort();
  const api = `http://127.0.0.1:${port}`;
  const proc = spawnServer('toxiproxy', program, ['-host', '127.0.0.1', '-port', String(port)], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, LOG_LEVEL: 'warn' },
    logFile: join(dir, 'toxiproxy.log'),
  });
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const res = await fetch(`${api}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`toxiproxy ${method} ${path}: HTTP ${res.status} ${text}`);
    return text ? (JSON.parse(text) as unknown) : undefined;
  };
  await untilReadyOrExit([proc], (signal) =>
    waitFor(
      () =>
        call('GET', '/version').then(
          () => true,
          () => false,
        ),
      { timeoutMs: 20_000, intervalMs: 100, signal, what: `toxiproxy on ${api}` },
    ),
  );
  let toxicSeq = 0;
  return {
    async proxy(name, upstream) {
      const listen = `127.0.0.1:${await freePort()}`;
      await call('POST', '/proxies', { name, listen, upstream, enabled: true });
      const toxics: string[] = [];
      return {
        name,
        listen,
        upstream,
        async add(toxic) {
          for (const stream of toxic.stream ? [toxic.stream] : ['upstream', 'downstream']) {
            const toxicName = `${toxic.type}-${stream}-${++toxicSeq}`;
            await call('POST', `/proxies/${name}/toxics`, {
              name: toxicName,
              type: toxic.type,
              stream,
              toxicity: 1,
              attributes: toxic.attributes,
            });
            toxics.push(toxicName);
          }
        },
        async clear() {
          for (const t of toxics.splice(0)) await call('DELETE', `/proxies/${name}/toxics/${t}`);
          await call('POST', `/proxies/${name}`, { enabled: true });
        },
        async setEnabled(enabled) {
          await call('POST', `/proxies/${name}`, { enabled });
        },
      };
    },
    stop: () => proc.stop(),
  };
}
