// The rollout controller between render and delivery, with its state in a store that
// can fail and be read again by a new controller (a restarted hub). Fleet status is a
// fake of our own interface: health facts set by the test, about the digest a state had.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bundleDigest, desiredStateDigest, silentLogger } from '@flotilla/common';
import type { BundleDesiredState, DesiredState } from '@flotilla/common';
import type { RolloutPlan, RolloutStrategy } from '../render/types.js';
import { RolloutController } from './controller.js';
import type { BundleHealthFact } from './controller.js';
import type { RolloutHold } from './gate.js';
import { MemoryRolloutStore } from './store.js';
import { stage } from './testing.js';

const REV = (n: number): string => `${String(n).repeat(12)}${'0'.repeat(28)}`;

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
  progressDeadlineMs: 60_000,
  onFailure: 'rollback',
};

const STAGES: Record<string, number> = { 'canary-1': 0, 'prod-1': 1, 'prod-2': 1 };

class World {
  readonly store = new MemoryRolloutStore();
  readonly health = new Map<string, BundleHealthFact>();
  nowMs = 1_000_000;
  head = new Map<string, DesiredState>();
  plans = new Map<string, RolloutPlan>();
  delivered = new Map<string, DesiredState>();
  holds = new Map<string, RolloutHold[]>();
  /** Every digest each cluster was sent, in order. */
  readonly sentLog = new Map<string, string[]>();
  controller = this.start();

  start(): RolloutController {
    const c: RolloutController = new RolloutController({
      store: this.store,
      status: {
        bundleHealth: (cluster, bundle) =>
          this.health.get(`${cluster}/${bundle}`) ?? {
            offline: false,
            health: '',
            healthDigest: '',
            healthReason: '',
          },
      },
      logger: silentLogger(),
      onChange: () => this.deliver(c),
      now: () => this.nowMs,
    });
    return c;
  }

  deliver(c = this.controller): void {
    const g = c.gate(this.head);
    this.delivered = g.states;
    this.holds = g.holds;
    c.delivered(g.states);
    for (const [cluster, s] of g.states) {
      const log = this.sentLog.get(cluster) ?? [];
      const web = s.bundles.find((b) => b.name === 'web')?.digest ?? '-';
      if (log[log.length - 1] !== web) log.push(web);
      this.sentLog.set(cluster, log);
    }
  }

  async publish(rev: number, versions: Record<string, string>): Promise<void> {
    this.head = new Map(
      Object.entries(versions).map(([cluster, v]) => {
        const bundles = [web(v)];
        return [
          cluster,
          { cluster, revision: REV(rev), digest: desiredStateDigest(cluster, bundles), bundles },
        ];
      }),
    );
    const stageOf = new Map(Object.keys(versions).map((c) => [c, STAGES[c] ?? 1]));
    this.plans = new Map([['web', { bundle: 'web', strategy: STRATEGY, stageOf, paused: [] }]]);
    this.controller.setHead(this.head, this.plans);
    this.deliver();
    await this.controller.decide();
  }

  /** The agent of `cluster` reports the bundle's health about the state it was sent. */
  report(cluster: string, health: string, reason = ''): void {
    this.health.set(`${cluster}/web`, {
      offline: false,
      health,
      healthDigest: this.delivered.get(cluster)?.digest ?? '',
      healthReason: reason,
    });
    // What FleetStatus.onTouched tells the hub's controller.
    this.controller.statusChanged(cluster);
  }

  running(cluster: string): string | undefined {
    return this.delivered.get(cluster)?.bundles.find((b) => b.name === 'web')?.objects[0]?.data as
      string | undefined;
  }

  versions(): Record<string, unknown> {
    return Object.fromEntries(
      [...this.delivered.keys()]
        .sort()
        .map((c) => [
          c,
          (
            this.delivered.get(c)?.bundles.find((b) => b.name === 'web')?.objects[0]?.data as
              { version: string } | undefined
          )?.version ?? null,
        ]),
    );
  }

  async tick(ms = 0): Promise<void> {
    this.nowMs += ms;
    await this.controller.decide();
  }
}

async function started(): Promise<World> {
  const w = new World();
  await w.controller.restore();
  await w.publish(1, { 'canary-1': 'v1', 'prod-1': 'v1', 'prod-2': 'v1' });
  for (const c of ['canary-1', 'prod-1', 'prod-2']) w.report(c, 'Ready');
  return w;
}

const ALL = { 'canary-1': 'v2', 'prod-1': 'v2', 'prod-2': 'v2' };

test('the-first-render-after-start-is-the-baseline-and-starts-no-rollout', async () => {
  const w = await started();
  assert.deepEqual(w.versions(), {
    'canary-1': 'v1',
    'prod-1': 'v1',
    'prod-2': 'v1',
  });
  assert.equal(w.controller.get('web'), undefined);
  assert.ok(w.store.states.has('web'), 'the baseline is saved');
});

test('a-new-revision-reaches-the-canary-first-and-later-stages-only-after-it-is-healthy', async () => {
  const w = await started();
  await w.publish(2, ALL);
  assert.deepEqual(w.versions(), {
    'canary-1': 'v2',
    'prod-1': 'v1',
    'prod-2': 'v1',
  });
  assert.match(
    w.holds.get('prod-1')?.[0]?.reason ?? '',
    /held by rollout web@222222222222-1: waits for stage 2\/2 \(prod\)/,
  );
  assert.equal(w.holds.get('prod-1')?.[0]?.servingRevision, REV(1));
  assert.equal(w.holds.has('canary-1'), false);
  w.report('canary-1', 'Ready');
  await w.tick();
  // maxConcurrent 1 in prod: one at a time, in name order.
  assert.deepEqual(w.versions(), {
    'canary-1': 'v2',
    'prod-1': 'v2',
    'prod-2': 'v1',
  });
  w.report('prod-1', 'Ready');
  await w.tick();
  w.report('prod-2', 'Ready');
  await w.tick();
  assert.equal(w.controller.get('web')?.phase, 'Completed');
  assert.equal(w.holds.size, 0);
  for (const c of ['canary-1', 'prod-1', 'prod-2'])
    assert.equal(w.sentLog.get(c)?.length, 2, `${c} was sent v1 then v2, once each`);
});

test('stale-health-from-the-previous-revision-cannot-promote-a-stage', async () => {
  const w = await started();
  await w.publish(2, ALL);
  // canary-1's Ready fact is about the v1 state: it must not count for v2.
  await w.tick();
  assert.equal(
    w.controller.get('web')?.clusters.find((c) => c.name === 'canary-1')?.phase,
    'Updating',
  );
  assert.equal(w.running('prod-1') !== undefined, true);
  assert.deepEqual(w.versions()['prod-1'], 'v1');
  w.report('canary-1', 'Progressing', 'Deployment/web/web: 0 of 1 replicas available');
  await w.tick();
  assert.deepEqual(w.versions()['prod-1'], 'v1');
  w.report('canary-1', 'Ready');
  await w.tick();
  assert.deepEqual(w.versions()['prod-1'], 'v2');
});

test('a-canary-not-healthy-by-its-deadline-is-rolled-back-and-prod-never-gets-the-revision', async () => {
  const w = await started();
  await w.publish(2, ALL);
  w.report('canary-1', 'Progressing', 'Deployment/web/web: 0 of 1 replicas available');
  await w.tick(59_000);
  assert.deepEqual(w.versions()['canary-1'], 'v2');
  await w.tick(1_000);
  const r = w.controller.get('web');
  assert.equal(r?.phase, 'RolledBack');
  assert.match(
    r?.reason ?? '',
    /canary-1: bundle web not healthy at 222222222222 within 1m: Progressing \(Deployment\/web\/web: 0 of 1 replicas available\)/,
  );
  assert.deepEqual(w.versions(), {
    'canary-1': 'v1',
    'prod-1': 'v1',
    'prod-2': 'v1',
  });
  assert.deepEqual(w.sentLog.get('prod-1'), [web('v1').digest]);
  // Status says plainly why the clusters run an older revision than the head.
  assert.match(
    w.holds.get('canary-1')?.[0]?.reason ?? '',
    /held by rollout web@222222222222-1: rolled back: stage 1\/2 \(canary\)/,
  );
  // It stays rolled back for this commit, however often it is rendered again.
  await w.publish(2, ALL);
  await w.tick(120_000);
  assert.equal(w.controller.get('web')?.phase, 'RolledBack');
  assert.deepEqual(w.versions()['canary-1'], 'v1');
});

test('a-restarted-controller-resumes-from-saved-state-without-sending-anything-twice', async () => {
  const w = await started();
  await w.publish(2, ALL);
  w.report('canary-1', 'Ready');
  await w.tick();
  const before = new Map([...w.delivered].map(([c, s]) => [c, s.digest]));
  // A new hub process: same store, nothing in memory; its renderer renders the same commit.
  await w.controller.stop();
  w.controller = w.start();
  await w.controller.restore();
  // Health reports of its clusters move it on at once, before anything else is decided.
  assert.ok(w.controller.watches('prod-1'));
  await w.publish(2, ALL);
  assert.deepEqual(new Map([...w.delivered].map(([c, s]) => [c, s.digest])), before);
  assert.equal(w.controller.get('web')?.phase, 'Progressing');
  w.report('prod-1', 'Ready');
  await w.tick();
  w.report('prod-2', 'Ready');
  await w.tick();
  assert.equal(w.controller.get('web')?.phase, 'Completed');
  for (const c of ['canary-1', 'prod-1', 'prod-2'])
    assert.equal(w.sentLog.get(c)?.length, 2, `${c}: v1 then v2, once each`);
});

test('a-restarted-hub-can-send-a-rendering-of-a-commit-it-never-rendered', async () => {
  const w = await started();
  await w.publish(2, ALL);
  // Restart after a commit v3 arrived: the old v1 rendering is only in the store.
  await w.controller.stop();
  w.controller = w.start();
  await w.controller.restore();
  await w.publish(3, { 'canary-1': 'v3', 'prod-1': 'v3', 'prod-2': 'v3' });
  // The canary starts the new rollout at once; prod keeps v1, read from the store.
  assert.deepEqual(w.versions(), { 'canary-1': 'v3', 'prod-1': 'v1', 'prod-2': 'v1' });
  assert.equal(w.controller.get('web')?.id, 'web@333333333333-2');
});

test('nothing-moves-while-rollout-state-cannot-be-saved', async () => {
  const w = await started();
  w.store.failWrites = true;
  await w.publish(2, ALL);
  assert.deepEqual(w.versions()['canary-1'], 'v1', 'no admission before it is durable');
  w.store.failWrites = false;
  await w.tick();
  assert.deepEqual(w.versions()['canary-1'], 'v2');
});

test('a-decision-that-cannot-be-saved-leaves-committed-state-as-it-was-and-is-made-again-once-it-can', async () => {
  const w = await started();
  await w.publish(2, ALL);
  w.report('canary-1', 'Ready');
  const before = JSON.stringify(w.controller.get('web'));
  w.store.failWrites = true;
  // This decision marks the canary healthy, completes its stage and admits prod-1, in
  // place: none of it may show (API, gating) while it is not saved.
  await w.tick();
  assert.equal(JSON.stringify(w.controller.get('web')), before, 'the rollout as committed');
  w.deliver();
  assert.deepEqual(w.versions(), { 'canary-1': 'v2', 'prod-1': 'v1', 'prod-2': 'v1' });
  await w.tick();
  assert.equal(JSON.stringify(w.controller.get('web')), before, 'still, after a second failure');
  w.store.failWrites = false;
  await w.tick();
  assert.deepEqual(w.versions(), { 'canary-1': 'v2', 'prod-1': 'v2', 'prod-2': 'v1' });
  assert.equal(w.controller.get('web')?.stages[0]?.state, 'Completed');
  w.report('prod-1', 'Ready');
  await w.tick();
  w.report('prod-2', 'Ready');
  await w.tick();
  assert.equal(w.controller.get('web')?.phase, 'Completed');
  for (const c of ['canary-1', 'prod-1', 'prod-2'])
    assert.equal(w.sentLog.get(c)?.length, 2, `${c} was sent v1 then v2, once each`);
  // What was saved is what a restarted hub resumes from: the same rollout.
  const restarted = new RolloutController({
    store: w.store,
    status: { bundleHealth: () => undefined },
    logger: silentLogger(),
    onChange: () => undefined,
    now: () => w.nowMs,
  });
  await restarted.restore();
  assert.deepEqual(restarted.get('web'), w.controller.get('web'));
  await restarted.stop();
});

test('before-rollout-state-is-restored-rollout-bundles-are-held-not-sent', async () => {
  const w = new World();
  w.head = new Map([
    ['canary-1', { cluster: 'canary-1', revision: REV(1), digest: 'x', bundles: [web('v1')] }],
  ]);
  w.controller.setHead(
    w.head,
    new Map([
      [
        'web',
        { bundle: 'web', strategy: STRATEGY, stageOf: new Map([['canary-1', 0]]), paused: [] },
      ],
    ]),
  );
  w.deliver();
  assert.deepEqual(w.delivered.get('canary-1')?.bundles, []);
  assert.deepEqual(w.delivered.get('canary-1')?.held, ['web']);
});

test('a-newer-commit-supersedes-a-running-rollout-without-double-updates', async () => {
  const w = await started();
  await w.publish(2, ALL);
  assert.deepEqual(w.versions()['canary-1'], 'v2');
  await w.publish(3, { 'canary-1': 'v3', 'prod-1': 'v3', 'prod-2': 'v3' });
  const r = w.controller.get('web');
  assert.equal(r?.id, 'web@333333333333-2');
  assert.equal(r?.stage, 0);
  // The canary goes v2 → v3 directly; prod clusters go v1 → v3 later, never through v2.
  assert.deepEqual(w.versions(), {
    'canary-1': 'v3',
    'prod-1': 'v1',
    'prod-2': 'v1',
  });
  w.report('canary-1', 'Ready');
  await w.tick();
  w.report('prod-1', 'Ready');
  await w.tick();
  assert.deepEqual(w.sentLog.get('prod-1'), [web('v1').digest, web('v3').digest]);
  assert.deepEqual(w.sentLog.get('canary-1'), [
    web('v1').digest,
    web('v2').digest,
    web('v3').digest,
  ]);
});

test('clusters-joining-and-leaving-mid-rollout-do-not-abort-it', async () => {
  const w = await started();
  await w.publish(2, ALL);
  await w.publish(2, { 'canary-1': 'v2', 'prod-1': 'v2', 'prod-3': 'v2' });
  const r = w.controller.get('web');
  assert.equal(r?.phase, 'Progressing');
  assert.deepEqual(
    r?.clusters.map((c) => [c.name, c.phase]),
    [
      ['canary-1', 'Updating'],
      ['prod-1', 'Waiting'],
      ['prod-3', 'Waiting'],
    ],
  );
  assert.equal(w.versions()['prod-3'], null, 'a new cluster gets nothing until its stage');
  assert.deepEqual(w.delivered.get('prod-3')?.held, ['web']);
});
