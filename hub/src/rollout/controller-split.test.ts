// A decision that runs out of its budget leaves the remaining bundles for the next one:
// the same commit decided one bundle per tick must end exactly as decided in one tick.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bundleDigest, desiredStateDigest, silentLogger } from '@flotilla/common';
import type { BundleDesiredState, DesiredState } from '@flotilla/common';
import type { RolloutPlan, RolloutStrategy } from '../render/types.js';
import { RolloutController } from './controller.js';
import type { BundleHealthFact } from './controller.js';
import { MemoryRolloutStore } from './store.js';
import { stage } from './testing.js';

const BUNDLES = ['api', 'db', 'web', 'worker', 'cache', 'queue'];
const CLUSTERS = ['edge-1', 'edge-2', 'edge-3', 'edge-4'];
const REV = (n: number): string => String(n).repeat(40);
const STRATEGY: RolloutStrategy = {
  stages: [stage('canary'), stage('rest', { maxConcurrent: { count: 2 } })],
  progressDeadlineMs: 60_000,
  onFailure: 'rollback',
};

function rendering(bundle: string, version: number): BundleDesiredState {
  const body = {
    name: bundle,
    drift: { mode: 'enforce' as const, ignore: [] },
    forceConflicts: true,
    objects: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: bundle, namespace: bundle },
        data: { version: String(version) },
      },
    ],
  };
  return { ...body, digest: bundleDigest(body) };
}

function heads(version: number): Map<string, DesiredState> {
  const bundles = BUNDLES.map((b) => rendering(b, version)).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  );
  return new Map(
    CLUSTERS.map((c) => [
      c,
      { cluster: c, revision: REV(version), digest: desiredStateDigest(c, bundles), bundles },
    ]),
  );
}

const plans = new Map<string, RolloutPlan>(
  BUNDLES.map((b) => [
    b,
    {
      bundle: b,
      strategy: STRATEGY,
      stageOf: new Map(CLUSTERS.map((c, i) => [c, i === 0 ? 0 : 1])),
      paused: [],
    },
  ]),
);

// A commit of every bundle rolled out to its end, agents healthy at what they are sent.
async function rollOut(
  budgetMs: number,
  sliceClusters?: number,
): Promise<{
  list: unknown;
  decisions: number;
  sent: Map<string, string[]>;
}> {
  const health = new Map<string, BundleHealthFact>();
  const sent = new Map<string, string[]>();
  let head = heads(1);
  let delivered = new Map<string, DesiredState>();
  let decisions = 0;
  const c: RolloutController = new RolloutController({
    store: new MemoryRolloutStore(),
    status: { bundleHealth: (cluster, bundle) => health.get(`${cluster}/${bundle}`) },
    logger: silentLogger(),
    now: () => 5_000_000,
    decisionBudgetMs: budgetMs,
    ...(sliceClusters !== undefined ? { sliceClusters } : {}),
    onDecision: () => decisions++,
    onChange: () => {
      const g = c.gate(head);
      delivered = g.states;
      c.delivered(g.states);
      for (const [cluster, s] of g.states)
        for (const b of s.bundles) {
          const log = sent.get(`${cluster}/${b.name}`) ?? [];
          if (log.at(-1) !== b.digest) log.push(b.digest);
          sent.set(`${cluster}/${b.name}`, log);
        }
    },
  });
  await c.restore();
  const settle = async (): Promise<void> => {
    do await c.decide();
    while (c.deferredBundles > 0);
  };
  c.setHead(head, plans);
  await settle();
  head = heads(2);
  c.setHead(head, plans);
  await settle();
  for (let round = 0; round < 50 && c.list().some((r) => r.phase !== 'Completed'); round++) {
    for (const [cluster, s] of delivered) {
      for (const b of s.bundles)
        health.set(`${cluster}/${b.name}`, {
          offline: false,
          health: 'Ready',
          healthDigest: s.digest,
          healthReason: '',
        });
      c.statusChanged(cluster);
    }
    await settle();
  }
  const list = c.list();
  await c.stop();
  return { list, decisions, sent };
}

test('a-commit-decided-one-bundle-per-tick-ends-exactly-as-decided-in-one-tick', async () => {
  const whole = await rollOut(Number.POSITIVE_INFINITY);
  const split = await rollOut(0);
  assert.equal((whole.list as unknown[]).length, BUNDLES.length);
  assert.ok(
    (whole.list as { phase: string }[]).every((r) => r.phase === 'Completed'),
    'every rollout completed',
  );
  assert.deepEqual(split.list, whole.list, 'the same rollouts, phases, stages and times');
  assert.ok(
    split.decisions >= whole.decisions + BUNDLES.length - 1,
    `split over more decisions (${split.decisions} vs ${whole.decisions})`,
  );
  for (const [key, log] of split.sent)
    assert.equal(log.length, 2, `${key} was sent v1 then v2, once each (${log.length})`);
  assert.deepEqual([...split.sent.keys()].sort(), [...whole.sent.keys()].sort());
});

test('a-stage-admitted-one-cluster-per-decision-ends-exactly-as-admitted-at-once', async () => {
  const whole = await rollOut(Number.POSITIVE_INFINITY);
  const sliced = await rollOut(Number.POSITIVE_INFINITY, 1);
  assert.deepEqual(sliced.list, whole.list, 'the same rollouts, phases, stages and times');
  assert.ok(
    sliced.decisions > whole.decisions,
    `sliced over more decisions (${sliced.decisions} vs ${whole.decisions})`,
  );
  for (const [key, log] of sliced.sent)
    assert.equal(log.length, 2, `${key} was sent v1 then v2, once each (${log.length})`);
  assert.deepEqual([...sliced.sent.keys()].sort(), [...whole.sent.keys()].sort());
});
