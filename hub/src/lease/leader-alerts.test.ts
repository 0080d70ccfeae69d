// Alert delivery among replicas, against a real nats-server (the ledger is JetStream KV);
// the lease is a fake whose holder the test chooses.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { silentLogger, sleep } from '@flotilla/common';
import { requireEnv, startNats, startNatsCluster } from '@flotilla/test-env';
import type { TestNats, TestNatsCluster, TestNatsNode } from '@flotilla/test-env';
import type { Alert } from '../notify/notifier.js';
import { NatsLink } from '../status/nats-link.js';
import { LeaderAlerts } from './leader-alerts.js';
import type { AlertLease } from './leader-alerts.js';

const skip = await requireEnv(['nats']);
const servers: TestNats[] = [];
const clusters: TestNatsCluster[] = [];
after(() => Promise.all([...servers, ...clusters].map((s) => s.stop())));

class FakeLease implements AlertLease {
  leading = false;
  generation: number | undefined;
  private readonly listeners = new Set<(leading: boolean, generation: number) => void>();
  onChange(l: (leading: boolean, generation: number) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  set(leading: boolean, generation: number): void {
    this.leading = leading;
    this.generation = leading ? generation : undefined;
    for (const l of this.listeners) l(leading, generation);
  }
}

const drift = (cluster: string, object: string): Alert => ({
  kind: 'drift',
  cluster,
  bundle: 'app',
  revision: 'r1',
  message: '',
  time: new Date().toISOString(),
  objects: [{ kind: 'ConfigMap', namespace: 'app', name: object, fields: [], changedBy: [] }],
});

test(
  'only-the-holder-sends-and-a-new-holder-sends-what-the-old-one-had-not',
  { skip, timeout: 60_000 },
  async () => {
    const nats = await startNats();
    servers.push(nats);
    const link = new NatsLink({ url: nats.url, logger: silentLogger() });
    link.start();
    try {
      const sent: string[] = [];
      const replicas = [new FakeLease(), new FakeLease()].map((lease) => ({
        lease,
        alerts: new LeaderAlerts({
          connection: () => link.connection(),
          lease,
          sink: { alert: (a) => sent.push(`${a.cluster}/${a.objects?.[0]?.name}`) },
          hubId: 'main',
          dedupeWindowMs: 60_000,
          keepMs: 30_000,
          logger: silentLogger(),
        }),
      }));
      const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
      a.lease.set(true, 1);
      // Both replicas fold the same transitions: each alert reaches both.
      for (const r of replicas) r.alerts.alert(drift('c1', 'x'));
      await sleep(300);
      assert.deepEqual(sent, ['c1/x'], 'the holder sent it, the follower kept it');
      // The holder dies before it sees the next transition; the follower folded it.
      a.lease.set(false, 1);
      b.alerts.alert(drift('c2', 'y'));
      assert.deepEqual(sent, ['c1/x']);
      b.lease.set(true, 2);
      const until = Date.now() + 5_000;
      while (sent.length < 2 && Date.now() < until) await sleep(20);
      await sleep(300);
      // The new holder sends what it kept, minus what the ledger says was sent.
      assert.deepEqual(sent, ['c1/x', 'c2/y']);
      for (const r of replicas) r.alerts.stop();
    } finally {
      await link.stop();
    }
  },
);

test(
  'with-the-ledger-without-a-majority-the-holder-waits-and-an-alert-is-sent-once-across-a-lease-change',
  { skip, timeout: 120_000 },
  async () => {
    const cluster = await startNatsCluster();
    clusters.push(cluster);
    const [kept, ...lost] = cluster.nodes as [TestNatsNode, ...TestNatsNode[]];
    const link = new NatsLink({ url: kept.url, logger: silentLogger() });
    link.start();
    try {
      const sent: string[] = [];
      const replicas = [new FakeLease(), new FakeLease()].map((lease) => ({
        lease,
        alerts: new LeaderAlerts({
          connection: () => link.connection(),
          lease,
          sink: { alert: (a) => sent.push(`${a.cluster}/${a.objects?.[0]?.name}`) },
          hubId: 'main',
          dedupeWindowMs: 60_000,
          keepMs: 60_000,
          replicas: 3,
          logger: silentLogger(),
        }),
      }));
      const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
      const sentCount = async (n: number) => {
        const end = Date.now() + 30_000;
        while (sent.length < n && Date.now() < end) await sleep(20);
      };
      a.lease.set(true, 1);
      a.alerts.alert(drift('c0', 'w'));
      await sentCount(1);
      assert.deepEqual(sent, ['c0/w'], 'the ledger answers');
      // The two nodes the link does not use die: the ledger's stream has no majority until
      // one is back (the node still up may answer writes at once with "no responders").
      await Promise.all(lost.map((n) => n.stop({ kill: true })));
      for (const r of replicas) r.alerts.alert(drift('c1', 'x'));
      await sleep(1_500);
      // The holder loses the lease meanwhile (its renewals fail the same way); the next
      // holder kept the alert and sends it once the ledger answers.
      a.lease.set(false, 1);
      b.lease.set(true, 2);
      await Promise.all(lost.map((n) => n.start()));
      await sentCount(2);
      await sleep(2_000);
      assert.deepEqual(sent, ['c0/w', 'c1/x'], 'sent once, by one holder');
      for (const r of replicas) r.alerts.stop();
    } finally {
      await link.stop();
    }
  },
);
