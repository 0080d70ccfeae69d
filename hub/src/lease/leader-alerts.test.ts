// Alert delivery among replicas: against a real nats-server (the ledger is JetStream KV),
// and against a fake ledger that loses answers the way a NATS node going away does. The
// lease is a fake whose holder the test chooses.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { silentLogger, sleep } from '@flotilla/common';
import { requireEnv, startNats, startNatsCluster } from '@flotilla/test-env';
import type { TestNats, TestNatsCluster, TestNatsNode } from '@flotilla/test-env';
import type { Alert } from '../notify/notifier.js';
import { NatsLink } from '../status/nats-link.js';
import { KvAlertLedger, LeaderAlerts, parseClaim } from './leader-alerts.js';
import type { AlertLease, AlertLedger, LedgerClaim } from './leader-alerts.js';

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

/** Two replicas sharing one ledger, each with its own lease; `sent` lists what went out. */
function twoReplicas(ledger: AlertLedger, keepMs: number) {
  const sent: string[] = [];
  const make = () => {
    const lease = new FakeLease();
    const alerts = new LeaderAlerts({
      ledger,
      lease,
      sink: { alert: (a) => sent.push(`${a.cluster}/${a.objects?.[0]?.name}`) },
      hubId: 'main',
      keepMs,
      ledgerPatienceMs: 20_000,
      logger: silentLogger(),
    });
    return { lease, alerts };
  };
  const a = make();
  const b = make();
  const sentCount = async (n: number, withinMs = 30_000) => {
    const end = Date.now() + withinMs;
    while (sent.length < n && Date.now() < end) await sleep(20);
  };
  const stop = () => {
    a.alerts.stop();
    b.alerts.stop();
  };
  return { a, b, sent, sentCount, stop };
}

/**
 * A ledger in memory. `loseAnswers` makes the next writes land but throw, as a JetStream
 * write whose answer was lost does; `down` makes every call throw without landing.
 */
class FakeLedger implements AlertLedger {
  readonly entries = new Map<string, { claim: LedgerClaim; revision: number }>();
  loseAnswers = 0;
  down = false;
  private seq = 0;
  async create(key: string, claim: LedgerClaim): Promise<number | undefined> {
    return this.write(key, claim, 0);
  }
  async read(key: string): Promise<{ claim: LedgerClaim; revision: number } | undefined> {
    if (this.down) throw new Error('no responders');
    return this.entries.get(key);
  }
  async update(key: string, claim: LedgerClaim, revision: number): Promise<number | undefined> {
    return this.write(key, claim, revision);
  }
  claims(): LedgerClaim[] {
    return [...this.entries.values()].map((e) => e.claim);
  }
  private write(key: string, claim: LedgerClaim, previous: number): number | undefined {
    if (this.down) throw new Error('no responders');
    if ((this.entries.get(key)?.revision ?? 0) !== previous) return undefined;
    const revision = ++this.seq;
    this.entries.set(key, { claim: { ...claim }, revision });
    if (this.loseAnswers > 0) {
      this.loseAnswers--;
      throw new Error('timeout');
    }
    return revision;
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
    const { a, b, sent, sentCount, stop } = twoReplicas(
      new KvAlertLedger({ connection: () => link.connection(), dedupeWindowMs: 60_000 }),
      30_000,
    );
    try {
      a.lease.set(true, 1);
      // Both replicas fold the same transitions: each alert reaches both.
      for (const r of [a, b]) r.alerts.alert(drift('c1', 'x'));
      await sentCount(1, 5_000);
      await sleep(300);
      assert.deepEqual(sent, ['c1/x'], 'the holder sent it, the follower kept it');
      // The holder dies before it sees the next transition; the follower folded it.
      a.lease.set(false, 1);
      b.alerts.alert(drift('c2', 'y'));
      assert.deepEqual(sent, ['c1/x']);
      b.lease.set(true, 2);
      await sentCount(2, 5_000);
      await sleep(300);
      // The new holder sends what it kept, minus what the ledger says was sent.
      assert.deepEqual(sent, ['c1/x', 'c2/y']);
    } finally {
      stop();
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
    const { a, b, sent, sentCount, stop } = twoReplicas(
      new KvAlertLedger({
        connection: () => link.connection(),
        dedupeWindowMs: 60_000,
        replicas: 3,
      }),
      60_000,
    );
    try {
      a.lease.set(true, 1);
      a.alerts.alert(drift('c0', 'w'));
      await sentCount(1);
      assert.deepEqual(sent, ['c0/w'], 'the ledger answers');
      // The two nodes the link does not use die: the ledger's stream has no majority until
      // one is back (the node still up may answer writes at once with "no responders", or
      // take a write and answer only once the others are back, after the request timed out).
      await Promise.all(lost.map((n) => n.stop({ kill: true })));
      for (const r of [a, b]) r.alerts.alert(drift('c1', 'x'));
      await sleep(1_500);
      // The holder loses the lease meanwhile (its renewals fail the same way); the next
      // holder kept the alert and sends it once the ledger answers.
      a.lease.set(false, 1);
      b.lease.set(true, 2);
      await Promise.all(lost.map((n) => n.start()));
      await sentCount(2);
      await sleep(2_000);
      assert.deepEqual(sent, ['c0/w', 'c1/x'], 'sent once, by one holder');
    } finally {
      stop();
      await link.stop();
    }
  },
);

test('a-claim-whose-answer-was-lost-is-still-sent-by-its-holder-once', async () => {
  const ledger = new FakeLedger();
  const { a, sent, sentCount, stop } = twoReplicas(ledger, 60_000);
  try {
    a.lease.set(true, 1);
    ledger.loseAnswers = 1;
    a.alerts.alert(drift('c1', 'x'));
    await sentCount(1, 5_000);
    await sleep(50);
    assert.deepEqual(sent, ['c1/x'], 'its own claim, found on the retry, is its to send');
    assert.deepEqual(
      ledger.claims().map((c) => [c.generation, c.sent]),
      [[1, true]],
    );
  } finally {
    stop();
  }
});

test('a-claim-left-by-a-holder-that-lost-the-lease-before-sending-is-sent-by-the-next', async () => {
  const ledger = new FakeLedger();
  const { a, b, sent, sentCount, stop } = twoReplicas(ledger, 60_000);
  try {
    a.lease.set(true, 1);
    // The old holder's claim lands but its answer is lost; before its retry the lease moves.
    ledger.loseAnswers = 1;
    for (const r of [a, b]) r.alerts.alert(drift('c1', 'x'));
    a.lease.set(false, 1);
    b.lease.set(true, 2);
    await sentCount(1, 5_000);
    await sleep(400);
    assert.deepEqual(sent, ['c1/x'], 'sent once, by the new holder');
    assert.deepEqual(
      ledger.claims().map((c) => [c.generation, c.sent]),
      [[2, true]],
    );
  } finally {
    stop();
  }
});

test('an-alert-marked-sent-is-not-sent-again-by-the-next-holder', async () => {
  const ledger = new FakeLedger();
  const { a, b, sent, sentCount, stop } = twoReplicas(ledger, 60_000);
  try {
    a.lease.set(true, 1);
    for (const r of [a, b]) r.alerts.alert(drift('c1', 'x'));
    await sentCount(1, 5_000);
    await sleep(50);
    a.lease.set(false, 1);
    b.lease.set(true, 2);
    await sleep(200);
    assert.deepEqual(sent, ['c1/x']);
  } finally {
    stop();
  }
});

test('without-a-ledger-the-holder-waits-then-sends-anyway', async () => {
  const ledger = new FakeLedger();
  ledger.down = true;
  const sent: string[] = [];
  const lease = new FakeLease();
  const alerts = new LeaderAlerts({
    ledger,
    lease,
    sink: { alert: (x) => sent.push(x.cluster) },
    hubId: 'main',
    keepMs: 60_000,
    ledgerPatienceMs: 400,
    logger: silentLogger(),
  });
  try {
    lease.set(true, 1);
    alerts.alert(drift('c1', 'x'));
    await sleep(100);
    assert.deepEqual(sent, [], 'it waits for the ledger first');
    const end = Date.now() + 5_000;
    while (sent.length === 0 && Date.now() < end) await sleep(20);
    assert.deepEqual(sent, ['c1'], 'then an alert sent twice beats one never sent');
  } finally {
    alerts.stop();
  }
});

test('ledger-entries-written-before-claims-carried-sent-count-as-sent', () => {
  assert.equal(parseClaim('{"generation":3,"kind":"drift","cluster":"c1"}').sent, true);
  assert.equal(
    parseClaim('{"generation":3,"sent":false,"kind":"drift","cluster":"c1"}').sent,
    false,
  );
  assert.equal(parseClaim('not json').sent, true);
});
