import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { JetStreamApiError, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { requireEnv, startNatsCluster } from './index.js';
import type { TestNatsCluster } from './index.js';

const skip = await requireEnv(['nats']);
const clusters: TestNatsCluster[] = [];
after(() => Promise.all(clusters.map((c) => c.stop())));

test(
  'three-node-cluster-keeps-a-replicated-stream-through-a-node-outage',
  { skip, timeout: 90_000 },
  async () => {
    const cluster = await startNatsCluster();
    clusters.push(cluster);
    assert.equal(cluster.nodes.length, 3);
    const nc = await connect({ servers: cluster.url.split(','), reconnectTimeWait: 200 });
    try {
      const jsm = await jetstreamManager(nc);
      // On a loaded machine the meta leader can answer before it has every peer's first
      // report and refuse the placement ("peer offline", 10005) for a moment.
      let info;
      for (let i = 0; ; i++) {
        try {
          info = await jsm.streams.add({ name: 'R3', subjects: ['r3.>'], num_replicas: 3 });
          break;
        } catch (err) {
          if (!(err instanceof JetStreamApiError) || err.code !== 10005 || i >= 100) throw err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      assert.equal(info.config.num_replicas, 3);
      const js = jetstream(nc);
      await js.publish('r3.a', 'one');
      // Whichever node the client uses, two of three keep the stream writable.
      const down = cluster.nodes[1];
      assert.ok(down);
      await down.stop({ kill: true });
      assert.equal(down.running, false);
      let ok = false;
      for (let i = 0; i < 100 && !ok; i++) {
        try {
          await js.publish('r3.a', 'two', { msgID: 'two', timeout: 2_000 });
          ok = true;
        } catch {
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      assert.ok(ok, 'the stream accepts writes with one node down');
      await down.start();
      const state = await jsm.streams.info('R3');
      assert.equal(state.state.messages, 2);
      assert.equal(state.cluster?.replicas?.length, 2, 'two followers beside the leader');
    } finally {
      await nc.close();
    }
  },
);
