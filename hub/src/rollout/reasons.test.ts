// The words that repeat in every cluster's reason are made once per strategy and revision
// (transitions.ts): what a person reads must not change with it, nor carry another
// strategy's or revision's words.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { RolloutStrategy } from '../render/types.js';
import { newRollout, step } from './machine.js';
import type { Rollout } from './model.js';
import { Health, joinWaiting, run, stage } from './testing.js';

const T0 = 1_000;

function started(strategy: RolloutStrategy, revision: string): Rollout {
  const r = newRollout(`web@${revision.slice(0, 12)}-1`, 'web', revision, strategy, T0);
  return run(r, [joinWaiting(0, 'a-1', 'a-2'), joinWaiting(1, 'b-1')], T0);
}

const strategy = (first: string, second: string): RolloutStrategy => ({
  stages: [stage(first), stage(second)],
  progressDeadlineMs: 60_000,
  onFailure: 'halt',
});

test('admitted-and-healthy-reasons-keep-their-wording-per-strategy-and-revision', () => {
  const one = started(strategy('canary', 'prod'), 'a'.repeat(40));
  // Another strategy object with other stage names, and another revision, decided in between.
  const two = started(strategy('early', 'late'), 'b'.repeat(40));
  const h = new Health();
  const oneAdmitted = step(one, { type: 'tick' }, T0, h);
  const twoAdmitted = step(two, { type: 'tick' }, T0, h);
  for (const c of ['a-1', 'a-2']) {
    assert.equal(oneAdmitted.rollout.clusters[c]?.reason, 'admitted by stage 1/2 (canary)');
    assert.equal(twoAdmitted.rollout.clusters[c]?.reason, 'admitted by stage 1/2 (early)');
  }
  assert.deepEqual(
    oneAdmitted.transitions.filter((t) => t.cluster !== '').map((t) => [t.cluster, t.message]),
    [
      ['a-1', 'admitted by stage 1/2 (canary)'],
      ['a-2', 'admitted by stage 1/2 (canary)'],
    ],
  );
  h.healthy('a-1', 'a-2');
  const oneHealthy = step(oneAdmitted.rollout, { type: 'tick' }, T0 + 1, h);
  const twoHealthy = step(twoAdmitted.rollout, { type: 'tick' }, T0 + 1, h);
  assert.equal(oneHealthy.rollout.clusters['a-1']?.reason, 'healthy at aaaaaaaaaaaa');
  assert.equal(twoHealthy.rollout.clusters['a-2']?.reason, 'healthy at bbbbbbbbbbbb');
  // The second stage starts with its own label.
  assert.equal(oneHealthy.rollout.clusters['b-1']?.reason, 'admitted by stage 2/2 (prod)');
  assert.equal(twoHealthy.rollout.clusters['b-1']?.reason, 'admitted by stage 2/2 (late)');
  assert.ok(
    oneHealthy.transitions.some(
      (t) => t.to === 'StageStarted' && t.message === 'stage 2/2 (prod) started: 1 cluster(s)',
    ),
    'the stage event names the stage as before',
  );
});
