// Starts a real nats-server with JetStream for this package's tests (not hub API).
// The binary comes from FLOTILLA_NATS_SERVER or the cache integration-tests/tools/
// build-nats.sh fills (~/.cache/flotilla/nats-server-<version>/nats-server).
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '@nats-io/transport-node';
import { sleep } from '@flotilla/common';

/** A running nats-server. */
export interface TestNatsServer {
  url: string;
  port: number;
  /** Kills it (SIGKILL: tests want a hard stop) and removes its store unless keepStore. */
  stop(keepStore?: boolean): Promise<void>;
  /** Starts it again on the same port and store, e.g. after stop(true). */
  restart(): Promise<void>;
}

/** Path of a nats-server binary, or undefined when none is installed. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.FLOTILLA_NATS_SERVER) return env.FLOTILLA_NATS_SERVER;
  const root =
    env.FLOTILLA_CACHE_DIR ?? join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'flotilla');
  const dirs = existsSync(root)
    ? readdirSync(root)
        .filter((d) => d.startsWith('nats-server-'))
        .sort()
        .reverse()
    : [];
  const found = dirs.find((d) => existsSync(join(root, d, 'nats-server')));
  return found === undefined ? undefined : join(root, found, 'nats-server');
}

/** Why a NATS test cannot run, or undefined when it can. Under CI=true a missing binary is a failure, not a skip. */
export function natsSkipReason(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (findNatsServer(env)) return undefined;
  const msg =
    'nats-server not found: run integration-tests/tools/build-nats.sh or set FLOTILLA_NATS_SERVER';
  if (env.CI === 'true') throw new Error(msg);
  return msg;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts nats-server -js on a free port with a fresh store directory. */
export async function startNatsServer(): Promise<TestNatsServer> {
  const bin = findNatsServer();
  if (!bin) throw new Error('nats-server not found');
  const port = await freePort();
  const store = await mkdtemp(join(tmpdir(), 'flotilla-nats-'));
  const url = `nats://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const launch = async (): Promise<void> => {
    child = spawn(bin, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', store], {
      stdio: 'ignore',
    });
    for (let i = 0; i < 100; i++) {
      try {
        const nc = await connect({ servers: url, timeout: 500 });
        await nc.close();
        return;
      } catch {
        await sleep(50);
      }
    }
    throw new Error(`nats-server did not start on ${url}`);
  };
  const kill = async (): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGKILL');
    });
  };
  await launch();
  return {
    url,
    port,
    restart: launch,
    stop: async (keepStore = false) => {
      await kill();
      if (!keepStore) await rm(store, { recursive: true, force: true });
    },
  };
}
