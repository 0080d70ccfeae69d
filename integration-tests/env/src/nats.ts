// startNats(): a real nats-server with JetStream. stop()/start() simulate an outage: the
// server comes back on the same port with the same store, as a restarted pod would.
// With `tls`, the server requires TLS with a certificate from a CA made for this server.
import { accessSync, constants, mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PrerequisiteMissingError } from './errors.js';
import { removeOnExit, spawnServer, untilReadyOrExit } from './processes.js';
import type { ManagedProcess } from './processes.js';
import { chooseRuntime } from './runtime.js';
import { createTestCa } from './tls.js';
import { freePort, waitFor } from './util.js';
import { binaryPaths, NATS_IMAGE, PREREQS_HINT } from './versions.js';

/** How long nats-server may take to report /healthz ok (JetStream recovery included). */
export const NATS_READY_TIMEOUT_MS = 30_000;

/** A running NATS server. */
export interface TestNats {
  /** Client URL, e.g. nats://127.0.0.1:4222 (tls://127.0.0.1:4222 with TLS). */
  url: string;
  port: number;
  /** Monitoring endpoint, e.g. http://127.0.0.1:8222 (/healthz, /connz, /jsz). */
  monitorUrl: string;
  /** With TLS: the CA that signed the server's certificate (PEM), and that file; else undefined. */
  caPem: string | undefined;
  caFile: string | undefined;
  /** Stops the server (see StopNatsOptions); port and store stay for start() by default. */
  stop(options?: StopNatsOptions): Promise<void>;
  /** Starts it again on the same port and store (no-op while running). */
  start(): Promise<void>;
}

/** Options of TestNats.stop(). */
export interface StopNatsOptions {
  /**
   * SIGKILL at once, as a crash or an OOM kill would end it, instead of SIGTERM (a clean
   * shutdown that flushes the store). Default false.
   */
  kill?: boolean;
  /**
   * Delete the JetStream store now instead of at process exit; a later start() begins
   * with an empty store. Default false (the store is kept for start()).
   */
  removeStore?: boolean;
}

/** Options of startNats(). */
export interface StartNatsOptions {
  /** Enable JetStream. Default true. */
  jetstream?: boolean;
  /** Extra nats-server configuration (e.g. operator/resolver for decentralized auth); binaries mode only. */
  config?: string;
  /**
   * Require TLS from clients, with a server certificate (127.0.0.1, ::1, localhost) from
   * a CA made for this server (TestNats.caFile). Default false.
   */
  tls?: boolean;
}

function healthz(port: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path: '/healthz', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error('healthz request timed out')));
    req.on('error', reject);
  });
}

/** Starts nats-server in a container when a runtime exists, else the cached binary. */
export async function startNats(options: StartNatsOptions = {}): Promise<TestNats> {
  const jetstream = options.jetstream ?? true;
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-nats-'));
  removeOnExit(dir);
  const [port, monitorPort] = [await freePort(), await freePort()];
  const tls = options.tls === true ? writeTlsFiles(dir) : undefined;
  const server =
    (await chooseRuntime()) === 'containers' && options.config === undefined
      ? containerServer(dir, port, monitorPort, jetstream, tls !== undefined)
      : binaryServer(dir, port, monitorPort, jetstream, options.config, tls);
  await server.start();
  const store = join(dir, 'store');
  return {
    url: `${tls ? 'tls' : 'nats'}://127.0.0.1:${port}`,
    port,
    monitorUrl: `http://127.0.0.1:${monitorPort}`,
    caPem: tls?.caPem,
    caFile: tls?.caFile,
    start: server.start,
    async stop(stopOptions: StopNatsOptions = {}) {
      await server.stop(stopOptions.kill ?? false);
      if (stopOptions.removeStore) await rm(store, { recursive: true, force: true });
    },
  };
}

// Where the TLS files of a server are: <dir>/tls/{ca.crt,server.crt,server.key}.
interface TlsFiles {
  caPem: string;
  caFile: string;
  certFile: string;
  keyFile: string;
}

function writeTlsFiles(dir: string): TlsFiles {
  const ca = createTestCa('flotilla-test-nats-ca');
  const server = ca.issueServer();
  mkdirSync(join(dir, 'tls'), { recursive: true });
  const files = {
    caPem: ca.caPem,
    caFile: join(dir, 'tls', 'ca.crt'),
    certFile: join(dir, 'tls', 'server.crt'),
    keyFile: join(dir, 'tls', 'server.key'),
  };
  writeFileSync(files.caFile, ca.caPem);
  writeFileSync(files.certFile, server.certPem);
  writeFileSync(files.keyFile, server.keyPem, { mode: 0o600 });
  return files;
}

// What each runtime provides; the store lives in <dir>/store in both.
interface Lifecycle {
  start(): Promise<void>;
  stop(kill: boolean): Promise<void>;
}

function binaryServer(
  dir: string,
  port: number,
  monitorPort: number,
  jetstream: boolean,
  config?: string,
  tls?: TlsFiles,
): Lifecycle {
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
  const args = [
    '-a',
    '127.0.0.1',
    '-p',
    String(port),
    '-m',
    String(monitorPort),
    '--server_name',
    `flotilla-test-${port}`,
  ];
  if (jetstream) args.push('-js', '-sd', join(dir, 'store'));
  const tlsBlock = tls
    ? `tls {\n  cert_file: ${JSON.stringify(tls.certFile)}\n  key_file: ${JSON.stringify(tls.keyFile)}\n  timeout: 5\n}\n`
    : undefined;
  if (config !== undefined || tlsBlock !== undefined) {
    writeFileSync(
      join(dir, 'nats.conf'),
      [tlsBlock, config].filter((c) => c !== undefined).join('\n'),
    );
    args.push('-c', join(dir, 'nats.conf'));
  }
  let proc: ManagedProcess | undefined;
  return {
    async start() {
      if (proc?.isRunning()) return;
      proc = spawnServer(`nats-server :${port}`, bin, args, {
        logFile: join(dir, 'nats-server.log'),
      });
      const started = proc;
      // /healthz turns 200 only once JetStream has recovered its store.
      await untilReadyOrExit([started], (signal) =>
        waitFor(() => healthz(monitorPort), {
          what: `nats-server :${port} /healthz`,
          timeoutMs: NATS_READY_TIMEOUT_MS,
          intervalMs: 50,
          signal,
        }),
      );
    },
    async stop(kill) {
      // A grace of 0 is a SIGKILL at once.
      await proc?.stop(kill ? 0 : undefined);
    },
  };
}

// GenericContainer rather than @testcontainers/nats: the module always turns on
// user/password auth, which the TestNats URL cannot carry. Fixed host ports and a bind
// mount keep port and store across stop()/start().
function containerServer(
  dir: string,
  port: number,
  monitorPort: number,
  jetstream: boolean,
  tls: boolean,
): Lifecycle {
  let running: { stop(options: { timeout: number }): Promise<unknown> } | undefined;
  return {
    async start() {
      if (running) return;
      await mkdir(join(dir, 'store'), { recursive: true });
      const { GenericContainer, Wait } = await import('testcontainers');
      const command = [
        '-m',
        '8222',
        ...(jetstream ? ['-js', '-sd', '/data'] : []),
        ...(tls ? ['--tls', '--tlscert', '/tls/server.crt', '--tlskey', '/tls/server.key'] : []),
      ];
      running = await new GenericContainer(process.env.FLOTILLA_NATS_IMAGE || NATS_IMAGE)
        .withCommand(command)
        .withExposedPorts({ container: 4222, host: port }, { container: 8222, host: monitorPort })
        .withBindMounts([
          { source: join(dir, 'store'), target: '/data' },
          ...(tls ? [{ source: join(dir, 'tls'), target: '/tls', mode: 'ro' as const }] : []),
        ])
        .withWaitStrategy(Wait.forHttp('/healthz', 8222))
        .start();
    },
    async stop(kill) {
      // testcontainers' default timeout 0 is docker's immediate SIGKILL.
      await running?.stop({ timeout: kill ? 0 : 10_000 });
      running = undefined;
    },
  };
}
