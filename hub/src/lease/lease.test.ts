// The once-only work lease against a real three-node NATS JetStream cluster.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { silentLogger, sleep } from '@flotilla/common';
import { requireEnv, startNatsCluster } from '@flotilla/test-env';
import type { TestNatsCluster } from '@flotilla/test-env';
import { NatsLink } from '../status/nats-link.js';
import { Lease } from './lease.js';

const skip = await requireEnv(['nats']);
const clusters: TestNatsCluster[] = [];
after(() => Promise.all(clusters.map((c) => c.stop())));

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<number> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
  return Date.now() - start;
}

interface Replica {
  link: NatsLink;
  lease: Lease;
  /** Every (leading, generation) change seen. */
  changes: [boolean, number][];
}

function replica(url: string, holder: string, name: string): Replica {
  const link = new NatsLink({ url, logger: silentLogger() });
  link.start();
  const lease = new Lease({
    connection: () => link.connection(),
    name,
    holder,
    logger: silentLogger(),
    ttlMs: 1_500,
    checkIntervalMs: 100,
    replicas: 3,
  });
  const changes: [boolean, number][] = [];
  lease.onChange((l, g) => changes.push([l, g]));
  lease.start();
  return { link, lease, changes };
}

test(
  'one-replica-holds-the-lease-and-another-takes-it-over-with-a-higher-generation',
  { skip, timeout: 120_000 },
  async () => {
    const cluster = await startNatsCluster();
    clusters.push(cluster);
    const replicas = ['a', 'b', 'c'].map((h) => replica(cluster.url, h, 'hub-one'));
    try {
      await until(() => replicas.some((r) => r.lease.leading), 'a leader');
      // Never two at once, sampled over several renewals.
      for (let i = 0; i < 40; i++) {
        assert.equal(replicas.filter((r) => r.lease.leading).length, 1, 'exactly one leader');
        await sleep(50);
      }
      const first = replicas.find((r) => r.lease.leading);
      assert.ok(first);
      const gen1 = first.lease.generation ?? 0;
      assert.ok(gen1 > 0);

      // The leader is cut from NATS without releasing (as when killed or partitioned): it
      // stops its work by its own timer, and another takes the lease once the server drops it.
      // (A client cut from one node of a cluster reconnects through the others it learnt.)
      await first.link.stop();
      const others = replicas.filter((r) => r !== first);
      const tookMs = await until(() => others.some((r) => r.lease.leading), 'a new leader');
      assert.ok(tookMs < 5_000, `taken over in ${tookMs} ms`);
      // The old holder stopped its work before the new one started it.
      assert.equal(first.lease.leading, false);
      assert.deepEqual(first.changes.at(-1), [false, gen1]);
      const second = others.find((r) => r.lease.leading);
      assert.ok(second);
      assert.ok((second.lease.generation ?? 0) > gen1, 'a later holder has a higher generation');
      assert.equal(others.filter((r) => r.lease.leading).length, 1);

      // A clean stop releases it: the last replica takes it without waiting for the TTL.
      const third = others.find((r) => r !== second);
      assert.ok(third);
      const stopAt = Date.now();
      await second.lease.stop();
      await until(() => third.lease.leading, 'the third replica leading');
      assert.ok(Date.now() - stopAt < 1_000, 'released, not expired');
    } finally {
      for (const r of replicas) {
        await r.lease.stop();
        await r.link.stop();
      }
    }
  },
);

test('the-lease-survives-the-loss-of-one-nats-node', { skip, timeout: 120_000 }, async () => {
  const cluster = await startNatsCluster();
  clusters.push(cluster);
  const replicas = ['a', 'b'].map((h) => replica(cluster.url, h, 'hub-two'));
  try {
    await until(() => replicas.some((r) => r.lease.leading), 'a leader');
    const node = cluster.nodes[0];
    assert.ok(node);
    await node.stop({ kill: true });
    // Renewals go on through the other two nodes: at most one leader, and one again soon.
    const deadline = Date.now() + 6_000;
    while (Date.now() < deadline) {
      assert.ok(replicas.filter((r) => r.lease.leading).length <= 1, 'never two leaders');
      await sleep(25);
    }
    await until(() => replicas.some((r) => r.lease.leading), 'a leader with a node down');
    await node.start();
  } finally {
    for (const r of replicas) {
      await r.lease.stop();
      await r.link.stop();
    }
  }
});
