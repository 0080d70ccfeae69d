// Two hub replicas' rollout controllers sharing rollout state in JetStream KV on a real
// nats-server, each behind its own lease: only the holder decides and writes, the other
// follows its saved state, and a takeover resumes the rollout where it was.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { bundleDigest, desiredStateDigest, silentLogger, sleep } from '@flotilla/common';
import type { BundleDesiredState, DesiredState } from '@flotilla/common';
import { requireEnv, startNats } from '@flotilla/test-env';
import type { TestNats } from '@flotilla/test-env';
import type { RolloutPlan, RolloutStrategy } from '../render/types.js';
import { RolloutController } from '../rollout/controller.js';
import type { BundleHealthFact } from '../rollout/controller.js';
import { KvRolloutStore } from '../rollout/store.js';
import type { RolloutStore } from '../rollout/store.js';
import { stage } from '../rollout/testing.js';
import { NatsLink } from '../status/nats-link.js';
import { LeaderRollouts } from './leader-rollouts.js';
import { RolloutActionForwarding } from './forward-actions.js';
import { Lease } from './lease.js';

const skip = await requireEnv(['nats']);
const servers: TestNats[] = [];
after(() => Promise.all(servers.map((s) => s.stop())));

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > ms) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const REV = (n: number): string => `${String(n).repeat(12)}${'0'.repeat(28)}`;
const CLUSTERS = ['canary-1', 'prod-1', 'prod-2'];

function web(version: string): BundleDesiredState {
  const body = {
    name: 'web',
    drift: { mode: 'enforce' as const, ignore: [] },
    forceConflicts: true,
    objects: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'web', namespace: 'web' },
        data: { version },
      },
    ],
  };
  return { ...body, digest: bundleDigest(body) };
}

const STRATEGY: RolloutStrategy = {
  stages: [stage('canary'), stage('prod', { maxConcurrent: { count: 1 } })],
  progressDeadlineMs: 600_000,
  onFailure: 'halt',
};

function head(
  rev: number,
  version: string,
): {
  states: Map<string, DesiredState>;
  plans: Map<string, RolloutPlan>;
} {
  const states = new Map(
    CLUSTERS.map((cluster) => {
      const bundles = [web(version)];
      const s: DesiredState = {
        cluster,
        revision: REV(rev),
        digest: desiredStateDigest(cluster, bundles),
        bundles,
      };
      return [cluster, s];
    }),
  );
  const stageOf = new Map(CLUSTERS.map((c) => [c, c.startsWith('canary') ? 0 : 1]));
  return {
    states,
    plans: new Map([['web', { bundle: 'web', strategy: STRATEGY, stageOf, paused: [] }]]),
  };
}

/** Health facts both replicas fold from the same events. */
const health = new Map<string, BundleHealthFact>();

class Replica {
  readonly link: NatsLink;
  readonly lease: Lease;
  readonly rollouts: LeaderRollouts;
  readonly forwarding: RolloutActionForwarding;
  /** Rollout state writes this replica made. */
  writes = 0;
  head = new Map<string, DesiredState>();
  delivered = new Map<string, DesiredState>();
  /** Every version each cluster was sent by this replica, in order. */
  readonly sentLog = new Map<string, string[]>();

  constructor(url: string, holder: string) {
    this.link = new NatsLink({ url, logger: silentLogger() });
    this.link.start();
    this.lease = new Lease({
      connection: () => this.link.connection(),
      name: 'hub-rollouts',
      holder,
      logger: silentLogger(),
      ttlMs: 1_500,
      checkIntervalMs: 100,
    });
    const kv = new KvRolloutStore(() => this.link.connection());
    const counted: RolloutStore = {
      loadStates: () => kv.loadStates(),
      loadRenderings: (d) => kv.loadRenderings(d),
      renderingDigests: () => kv.renderingDigests(),
      saveState: (b, encoded) => (this.writes++, kv.saveState(b, encoded)),
      deleteState: (b) => (this.writes++, kv.deleteState(b)),
      saveRendering: (r) => (this.writes++, kv.saveRendering(r)),
      deleteRendering: (d) => (this.writes++, kv.deleteRendering(d)),
    };
    this.forwarding = new RolloutActionForwarding({
      connection: () => this.link.connection(),
      hubId: 'hub-rollouts',
      replicaId: holder,
      lease: this.lease,
      act: (...a) => this.rollouts.actAsHolder(...a),
      logger: silentLogger(),
    });
    this.forwarding.start();
    this.rollouts = new LeaderRollouts({
      lease: this.lease,
      store: counted,
      logger: silentLogger(),
      forward: (...a) => this.forwarding.forward(...a),
      onChange: () => this.deliver(),
      followIntervalMs: 100,
      controller: (store) =>
        new RolloutController({
          store,
          status: {
            bundleHealth: (cluster, bundle) =>
              health.get(`${cluster}/${bundle}`) ?? {
                offline: false,
                health: '',
                healthDigest: '',
                healthReason: '',
              },
          },
          logger: silentLogger(),
          onChange: () => this.deliver(),
          debounceMs: 0,
        }),
    });
  }

  deliver(): void {
    const g = this.rollouts.gate(this.head);
    this.delivered = g.states;
    this.rollouts.delivered(g.states);
    for (const [cluster, s] of g.states) {
      const log = this.sentLog.get(cluster) ?? [];
      const v = (s.bundles[0]?.objects[0]?.data as { version: string } | undefined)?.version ?? '-';
      if (log.at(-1) !== v) log.push(v);
      this.sentLog.set(cluster, log);
    }
  }

  publish(rev: number, version: string): void {
    const h = head(rev, version);
    this.head = h.states;
    this.rollouts.setHead(h.states, h.plans);
    this.deliver();
  }

  version(cluster: string): string | undefined {
    return (
      this.delivered.get(cluster)?.bundles[0]?.objects[0]?.data as { version: string } | undefined
    )?.version;
  }

  async stop(): Promise<void> {
    await this.forwarding.stop();
    await this.rollouts.stop();
    await this.lease.stop();
    await this.link.stop();
  }
}

/** The agent of `cluster` reports Ready about what replica `r` sent it. */
function ready(r: Replica, cluster: string, replicas: Replica[]): void {
  health.set(`${cluster}/web`, {
    offline: false,
    health: 'Ready',
    healthDigest: r.delivered.get(cluster)?.digest ?? '',
    healthReason: '',
  });
  for (const x of replicas) x.rollouts.statusChanged(cluster);
}

test(
  'only-the-lease-holder-decides-rollouts-a-follower-shows-its-state-and-a-takeover-resumes-it',
  { skip, timeout: 120_000 },
  async () => {
    const nats = await startNats();
    servers.push(nats);
    const a = new Replica(nats.url, 'a');
    const b = new Replica(nats.url, 'b');
    const both = [a, b];
    try {
      a.lease.start();
      await until(() => a.lease.leading, 'replica a to hold the lease');
      b.lease.start();
      await Promise.all(both.map((r) => r.rollouts.restore()));
      assert.equal(a.rollouts.deciding, true);
      assert.equal(b.rollouts.deciding, false);

      // Baseline v1, then v2 with a strategy: the holder starts the rollout.
      for (const r of both) r.publish(1, 'v1');
      await until(() => a.writes > 0, 'the baseline saved by the holder');
      // The follower holds a new rollout bundle until it reads the holder's saved state.
      await until(() => b.version('canary-1') === 'v1', 'the follower to send the baseline');
      for (const c of CLUSTERS) ready(a, c, both);
      for (const r of both) r.publish(2, 'v2');
      await until(
        () => a.rollouts.get('web')?.revision === REV(2),
        'the holder to start the rollout',
      );
      await until(() => a.version('canary-1') === 'v2', 'the holder to send the canary v2');

      // The follower shows the same rollout from KV and gates its agents the same way.
      await until(
        () => b.rollouts.get('web')?.revision === REV(2),
        'the follower to see the rollout',
      );
      await until(() => b.version('canary-1') === 'v2', 'the follower to send the canary v2');
      assert.equal(b.version('prod-1'), 'v1');
      assert.equal(b.writes, 0, 'the follower wrote no rollout state');
      // An action on the follower is done by the holder, and answered with its result.
      await assert.rejects(
        b.rollouts.actAsHolder('web', 'pause', 'someone'),
        /UNAVAILABLE|unavailable/,
      );
      assert.equal((await b.rollouts.act('web', 'pause', 'someone')).phase, 'Paused');
      assert.equal(a.rollouts.get('web')?.phase, 'Paused', 'the holder paused it');
      assert.equal((await b.rollouts.act('web', 'resume', 'someone')).phase, 'Progressing');
      assert.equal(b.writes, 0, 'the follower still wrote no rollout state');

      // The holder is cut from NATS (killed or partitioned): it stops deciding by itself,
      // and the other replica takes the lease and resumes from the saved state.
      const writesBefore = a.writes;
      await a.link.stop();
      await until(() => b.rollouts.deciding, 'replica b to take over the rollout', 15_000);
      assert.equal(a.rollouts.deciding, false, 'the old holder stopped deciding');
      // Reads are answered throughout: from the follower's view until b has read the state.
      assert.equal(b.rollouts.get('web')?.revision, REV(2), 'b resumed the same rollout');
      assert.equal(b.version('canary-1'), 'v2');

      // The canary is healthy: b moves the rollout on to prod, one cluster at a time.
      ready(b, 'canary-1', both);
      await until(
        () => b.version('prod-1') === 'v2' || b.version('prod-2') === 'v2',
        'prod started',
      );
      const first = b.version('prod-1') === 'v2' ? 'prod-1' : 'prod-2';
      const second = first === 'prod-1' ? 'prod-2' : 'prod-1';
      assert.equal(b.version(second), 'v1', 'one prod cluster at a time');
      ready(b, first, both);
      await until(() => b.version(second) === 'v2', 'the second prod cluster');
      ready(b, second, both);
      await until(() => b.rollouts.get('web')?.phase === 'Completed', 'the rollout to succeed');
      assert.ok(b.writes > 0, 'the new holder writes rollout state');
      assert.equal(a.writes, writesBefore, 'the old holder wrote nothing after losing the lease');
      // Every cluster was sent each version once, in order: no step repeated or skipped
      // ("-": held before the follower had read the baseline; the agent keeps what it runs).
      for (const c of CLUSTERS) assert.deepEqual(b.sentLog.get(c), ['-', 'v1', 'v2'], c);
      for (const c of CLUSTERS)
        assert.deepEqual(a.sentLog.get(c), c === 'canary-1' ? ['v1', 'v2'] : ['v1'], c);
    } finally {
      await Promise.all(both.map((r) => r.stop()));
    }
  },
);
