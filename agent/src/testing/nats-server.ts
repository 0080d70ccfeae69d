// A throwaway nats-server with JetStream for this package's tests (binary from the
// shared cache; FLOTILLA_NATS_SERVER overrides). Under CI=true a missing binary fails.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/** A running nats-server. */
export interface TestNats {
  url: string;
  /** Stops the server and removes its store. */
  stop(): Promise<void>;
  /** An outage: stops the server, keeping its port and JetStream store for start(). */
  halt(): Promise<void>;
  /** Starts it again after halt(), same port and store. */
  start(): Promise<void>;
}

/** Path of the nats-server binary. */
export function natsBinary(env: NodeJS.ProcessEnv = process.env): string {
  return (
    env.FLOTILLA_NATS_SERVER ||
    join(
      env.FLOTILLA_CACHE_DIR || join(homedir(), '.cache', 'flotilla'),
      'nats-server-v2.12.2',
      'nats-server',
    )
  );
}

/** Skip message when the binary is missing (throws under CI=true), else undefined. */
export function natsSkipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  try {
    accessSync(natsBinary(env), constants.X_OK);
    return undefined;
  } catch {
    const msg = `${natsBinary(env)} is missing: run integration-tests/tools/prereqs.sh`;
    if (env.CI === 'true') throw new Error(msg);
    return msg;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = createConnection({ host: '127.0.0.1', port }, () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

/** Starts nats-server -js on a free loopback port. */
export async function startTestNats(): Promise<TestNats> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-agent-nats-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    const c = spawn(natsBinary(), ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir], {
      stdio: 'ignore',
    });
    child = c;
    const deadline = Date.now() + 10_000;
    while (!(await accepts(port))) {
      if (c.exitCode !== null || Date.now() > deadline)
        throw new Error('nats-server did not start');
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const halt = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c && c.exitCode === null) {
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    }
  };
  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    halt,
    start: launch,
    stop: async () => {
      await halt();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
