// A decision admits or puts back at most a slice of clusters (Observer.slice); the rest
// follow in the next decisions. Slicing must not change what the rollout does: the same
// clusters end in the same phases, maxConcurrent holds, and every event other than a tick
// sees a rollback left over by a slice as complete.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { newRollout, step } from './machine.js';
import type { RolloutEvent } from './machine.js';
import type { Rollout, Transition } from './model.js';
import { nextWakeMs } from './tick.js';
import { Health, stage } from './testing.js';
import type { RolloutStrategy } from '../render/types.js';

const T0 = 1_000;
const name = (i: number): string => `c-${String(i).padStart(4, '0')}`;

// 1,000 clusters: 10 in stage 0, 90 in stage 1, 400 in stage 2, 500 in stage 3.
const stageOf = (i: number): number => (i < 10 ? 0 : i < 100 ? 1 : i < 500 ? 2 : 3);

function thousand(strategy: RolloutStrategy): Rollout {
  const r = newRollout('web@abcdef123456-1', 'web', 'abcdef1234567890', strategy, T0);
  const clusters = Array.from({ length: 1000 }, (_, i) => ({
    cluster: name(i),
    stage: stageOf(i),
    phase: 'Waiting' as const,
    reason: 'waits',
  }));
  return step(r, { type: 'join', clusters, quiet: true }, T0, new Health()).rollout;
}

const FOUR: RolloutStrategy = {
  stages: [stage('one'), stage('ten'), stage('half'), stage('all')],
  progressDeadlineMs: 60_000,
  onFailure: 'rollback',
};

// Ticks until nothing is left over (at most `max`), each told every cluster is healthy or not.
function ticks(
  r: Rollout,
  nowMs: number,
  h: Health,
  max = 100,
): { rollout: Rollout; perTick: Transition[][] } {
  const perTick: Transition[][] = [];
  let cur = r;
  for (let n = 0; n < max; n++) {
    const res = step(cur, { type: 'tick' }, nowMs, h);
    cur = res.rollout;
    perTick.push(res.transitions);
    if (cur.pending === undefined) return { rollout: cur, perTick };
    assert.equal(res.wakeMs, nowMs, 'a decision with clusters left over wakes at once');
  }
  throw new Error('slices never ended');
}

const healthyAll = (): Health =>
  new Health().healthy(...Array.from({ length: 1000 }, (_, i) => name(i)));

describe('slices', () => {
  test('a-rollback-of-1000-clusters-over-several-ticks-is-complete-and-ordered', () => {
    // Every stage healthy, then the last stage fails its deadline: all 1,000 go back.
    let r = thousand(FOUR);
    const h = healthyAll();
    for (let k = 0; k < 10 && r.stage < 3; k++) r = ticks(r, T0, h).rollout;
    assert.equal(r.stage, 3, 'the last stage started');
    for (let i = 500; i < 1000; i++) h.unhealthy('Degraded', name(i));
    const { rollout, perTick } = ticks(r, T0 + 60_000, h.sliced(100));
    assert.equal(rollout.phase, 'RolledBack');
    assert.ok(perTick.length >= 10, `over ${perTick.length} ticks`);
    const first = perTick[0] as Transition[];
    assert.ok(
      first.some((t) => t.cluster === '' && t.to === 'RolledBack'),
      'the rollout is RolledBack from the first tick',
    );
    const order: string[] = [];
    for (const t of perTick) {
      const back = t.filter((x) => x.to === 'RolledBack' && x.cluster !== '');
      assert.ok(back.length <= 100, `at most a slice per tick (${back.length})`);
      for (const x of back) {
        assert.equal(x.message, rollout.reason, 'each says why, as the rollout does');
        order.push(x.cluster);
      }
    }
    const want = Array.from({ length: 1000 }, (_, i) => i)
      .sort((a, b) => stageOf(b) - stageOf(a) || a - b)
      .map(name);
    assert.deepEqual(order, want, 'every cluster once, the last stage first, by name');
    for (const c of Object.values(rollout.clusters)) assert.equal(c.phase, 'RolledBack');
    assert.equal(rollout.pending, undefined);
    assert.equal(nextWakeMs(rollout, T0 + 60_000), undefined, 'nothing left to wake for');
  });

  test('a-stage-start-split-across-ticks-never-exceeds-max-concurrent', () => {
    const strategy: RolloutStrategy = {
      ...FOUR,
      stages: [stage('all', { maxConcurrent: { percent: 30 } })],
    };
    const r0 = newRollout('web@abcdef123456-1', 'web', 'abcdef1234567890', strategy, T0);
    const clusters = Array.from({ length: 1000 }, (_, i) => ({
      cluster: name(i),
      stage: 0,
      phase: 'Waiting' as const,
      reason: 'waits',
    }));
    let r = step(r0, { type: 'join', clusters, quiet: true }, T0, new Health()).rollout;
    const h = new Health().sliced(40);
    let tick = 0;
    let admittedTicks = 0;
    while (r.phase !== 'Completed' && tick++ < 500) {
      const res = step(r, { type: 'tick' }, T0 + tick, h);
      r = res.rollout;
      const admitted = res.transitions.filter((t) => t.to === 'Updating').length;
      assert.ok(admitted <= 40, `a tick admits at most its slice (${admitted})`);
      if (admitted > 0) admittedTicks++;
      const inFlight = Object.values(r.clusters).filter((c) => c.phase === 'Updating').length;
      assert.ok(inFlight <= 300, `never more than maxConcurrent updating (${inFlight})`);
      // Agents report healthy only every other tick: slices and freed slots interleave.
      if (tick % 2 === 0)
        for (const [c, run] of Object.entries(r.clusters))
          if (run.phase === 'Updating') h.healthy(c);
    }
    assert.equal(r.phase, 'Completed');
    assert.ok(admittedTicks >= 25, `admissions spread over ${admittedTicks} ticks`);
    for (const c of Object.values(r.clusters)) assert.equal(c.phase, 'Healthy');
  });

  test('sliced-and-whole-ticks-end-in-the-same-phases-with-the-same-admission-order', () => {
    const whole = ticks(thousand(FOUR), T0, new Health());
    const sliced = ticks(thousand(FOUR), T0, new Health().sliced(7));
    assert.deepEqual(sliced.rollout.clusters, whole.rollout.clusters);
    const admitted = (p: Transition[][]): string[] =>
      p
        .flat()
        .filter((t) => t.to === 'Updating')
        .map((t) => t.cluster);
    assert.deepEqual(admitted(sliced.perTick), admitted(whole.perTick));
    assert.equal(sliced.rollout.stage, whole.rollout.stage);
  });

  for (const ev of [
    { type: 'retry', by: 'ops' },
    { type: 'supersede', revision: 'fedcba9876543210' },
  ] as RolloutEvent[]) {
    test(`${ev.type}-sees-a-rollback-left-over-by-a-slice-as-complete`, () => {
      let r = thousand(FOUR);
      r = step(r, { type: 'tick' }, T0, new Health()).rollout; // stage 1 Updating
      const h = healthyAll();
      r = ticks(r, T0, h).rollout;
      r = step(r, { type: 'abort', by: 'ops' }, T0 + 1, new Health().sliced(20)).rollout;
      assert.equal(r.phase, 'Aborted');
      assert.equal(r.pending, 'rollback', 'the abort left clusters to put back');
      const res = step(r, ev, T0 + 2, new Health().sliced(20));
      const back = res.transitions.filter((t) => t.to === 'RolledBack' && t.cluster !== '');
      assert.ok(back.length > 20, 'the rest is put back at once, before the event');
      assert.equal(res.rollout.pending, ev.type === 'retry' ? res.rollout.pending : undefined);
      const admitted = Object.values(res.rollout.clusters).filter(
        (c) => c.phase === 'Updating' || c.phase === 'Healthy' || c.phase === 'Failed',
      );
      if (ev.type === 'supersede') assert.equal(admitted.length, 0, 'nothing runs the revision');
      else
        assert.ok(
          Object.values(res.rollout.clusters).every((c) => c.phase !== 'RolledBack'),
          'retry puts every rolled back cluster back to waiting',
        );
    });
  }
});
