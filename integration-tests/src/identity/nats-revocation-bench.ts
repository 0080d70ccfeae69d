// Benchmark of NATS revocation (a program, not a test) on the pinned nats-server with
// the `full` resolver: N agents connected, then R revocations one after another, each
// pushed by the hub's NatsRevocationPublisher; measured from the push to the revoked
// connection being closed and to a new connection with its credentials being refused.
// The account JWT grows with every revocation, so later ones show the cost of a long list.
//   node integration-tests/dist/identity/nats-revocation-bench.js [agents=50] [revocations=10] [preRevoked=1000]
// Target (issue 6): a revoked cluster's NATS credentials stop working within 5 s.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, jwtAuthenticator } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { createUser } from '@nats-io/nkeys';
import { silentLogger } from '@flotilla/common';
import {
  NatsRevocationPublisher,
  agentInboxPrefix,
  agentUserJwt,
  createNatsAuthSetup,
} from '@flotilla/hub';
import { startNats } from '@flotilla/test-env';

const TARGET_MS = 5_000;
const [agents = 50, revocations = 10, preRevoked = 1000] = process.argv.slice(2).map(Number);

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
}

async function main(): Promise<void> {
  const setup = createNatsAuthSetup({
    resolverDir: join(await mkdtemp(join(tmpdir(), 'flotilla-nats-bench-')), 'jwt'),
  });
  const nats = await startNats({ config: setup.serverConfig });
  const revoked: Record<string, number> = {};
  // Keys revoked earlier (clusters long gone, JWTs not yet expired) make the list realistic.
  for (let i = 0; i < preRevoked; i++)
    revoked[createUser().getPublicKey()] = Math.ceil(Date.now() / 1000);
  const publisher = new NatsRevocationPublisher({
    url: nats.url,
    systemCreds: new TextEncoder().encode(setup.systemCreds),
    operatorSigningSeed: setup.operatorSigningSeed,
    accountSeed: setup.accountSeed,
    logger: silentLogger(),
  });
  publisher.start(() => ({ ...revoked }));
  try {
    const users = Array.from({ length: agents }, (_, i) => {
      const key = createUser();
      const cluster = `c${i}`;
      const jwt = agentUserJwt(setup.accountSeed, cluster, key.getPublicKey());
      const dial = (): Promise<NatsConnection> =>
        connect({
          servers: nats.url,
          authenticator: jwtAuthenticator(jwt, key.getSeed()),
          inboxPrefix: agentInboxPrefix(cluster),
          reconnect: false,
        });
      return { key, dial };
    });
    const conns = await Promise.all(users.map((u) => u.dial()));
    const closedMs: number[] = [];
    const refusedMs: number[] = [];
    for (let i = 0; i < Math.min(revocations, agents); i++) {
      const u = users[i] as (typeof users)[number];
      const closed = (conns[i] as NatsConnection).closed();
      const t0 = performance.now();
      revoked[u.key.getPublicKey()] = Math.ceil(Date.now() / 1000);
      if (!(await publisher.push())) throw new Error('push failed');
      await closed;
      closedMs.push(performance.now() - t0);
      for (;;) {
        const ok = await u.dial().then(
          (nc) => nc.close().then(() => true),
          () => false,
        );
        if (!ok) break;
        if (performance.now() - t0 > 30_000) throw new Error('never refused');
      }
      refusedMs.push(performance.now() - t0);
    }
    const still = conns.slice(revocations).filter((c) => !c.isClosed()).length;
    const line = (what: string, v: number[]): string =>
      `${what}: p50 ${pct(v, 50).toFixed(0)} ms, p95 ${pct(v, 95).toFixed(0)} ms, max ${Math.max(...v).toFixed(0)} ms (target ${TARGET_MS} ms: ${Math.max(...v) <= TARGET_MS ? 'met' : 'NOT MET'})`;
    console.log(
      `nats revocation, ${agents} agents connected, ${preRevoked} keys already revoked, ${revocations} revocations`,
    );
    console.log(line('push → connection closed', closedMs));
    console.log(line('push → new connection refused', refusedMs));
    console.log(`other agents still connected: ${still}/${agents - Math.min(revocations, agents)}`);
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
  } finally {
    publisher.stop();
    await nats.stop();
  }
}

await main();
