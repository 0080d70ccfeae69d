// The rollout state machine, exhaustively: every phase × every event, then the rules of
// a tick one by one.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ACCEPTS, ROLLOUT_ACTIONS, RolloutConflictError, newRollout, step } from './machine.js';
import type { RolloutEvent } from './machine.js';
import { CLUSTER_TRANSITIONS, ROLLOUT_PHASES, ROLLOUT_TRANSITIONS } from './model.js';
import type { Rollout, RolloutPhase } from './model.js';
import { nextWakeMs } from './tick.js';
import { Health, fresh, joinWaiting, run, stage, twoStages } from './testing.js';

const T0 = 1_000;

// A rollout in each phase, reached through events only (never built by hand).
function inPhase(phase: RolloutPhase): Rollout {
  const h = new Health();
  const started = run(fresh(), [{ type: 'tick' }], T0, h); // canary-1 Updating
  const awaiting = run(started, [{ type: 'tick' }], T0 + 1, h.healthy('canary-1'));
  switch (phase) {
    case 'Progressing':
      return started;
    case 'AwaitingApproval':
      return awaiting;
    case 'Paused':
      return run(awaiting, [{ type: 'pause', by: 'ops' }], T0 + 2, h);
    case 'Halted':
      return run(
        started,
        [{ type: 'tick' }],
        T0 + 60_000,
        new Health().unhealthy('Degraded', 'canary-1'),
      );
    case 'RolledBack':
      return run(
        run(fresh(twoStages('rollback')), [{ type: 'tick' }], T0),
        [{ type: 'tick' }],
        T0 + 60_000,
      );
    case 'Completed':
      return run(
        awaiting,
        [{ type: 'approve', by: 'ops' }, { type: 'tick' }],
        T0 + 3,
        new Health().healthy('canary-1', 'prod-1', 'prod-2'),
      );
    case 'Superseded':
      return run(started, [{ type: 'supersede', revision: 'fedcba9876543210' }], T0 + 2);
    case 'Aborted':
      return run(started, [{ type: 'abort', by: 'ops' }], T0 + 2);
  }
}

const EVENTS: Record<string, RolloutEvent> = {
  tick: { type: 'tick' },
  approve: { type: 'approve', by: 'ops' },
  pause: { type: 'pause', by: 'ops' },
  resume: { type: 'resume', by: 'ops' },
  abort: { type: 'abort', by: 'ops' },
  retry: { type: 'retry', by: 'ops' },
  supersede: { type: 'supersede', revision: 'fedcba9876543210' },
  join: joinWaiting(1, 'late-1'),
  leave: { type: 'leave', cluster: 'prod-2' },
};

// phase → event → the phase after it, or "reject" (RolloutConflictError, nothing changes).
const TABLE: Record<RolloutPhase, Record<keyof typeof EVENTS, RolloutPhase | 'reject'>> = {
  Progressing: {
    tick: 'Progressing',
    approve: 'reject',
    pause: 'Paused',
    resume: 'reject',
    abort: 'Aborted',
    retry: 'reject',
    supersede: 'Superseded',
    join: 'Progressing',
    leave: 'Progressing',
  },
  AwaitingApproval: {
    tick: 'AwaitingApproval',
    approve: 'Progressing',
    pause: 'Paused',
    resume: 'reject',
    abort: 'Aborted',
    retry: 'reject',
    supersede: 'Superseded',
    join: 'AwaitingApproval',
    leave: 'AwaitingApproval',
  },
  Paused: {
    tick: 'Paused',
    approve: 'Paused',
    pause: 'reject',
    resume: 'AwaitingApproval',
    abort: 'Aborted',
    retry: 'reject',
    supersede: 'Superseded',
    join: 'Paused',
    leave: 'Paused',
  },
  Halted: {
    tick: 'Halted',
    approve: 'reject',
    pause: 'reject',
    resume: 'reject',
    abort: 'Aborted',
    retry: 'Progressing',
    supersede: 'Superseded',
    join: 'Halted',
    leave: 'Halted',
  },
  RolledBack: {
    tick: 'RolledBack',
    approve: 'reject',
    pause: 'reject',
    resume: 'reject',
    abort: 'reject',
    retry: 'Progressing',
    supersede: 'Superseded',
    join: 'RolledBack',
    leave: 'RolledBack',
  },
  Completed: {
    tick: 'Completed',
    approve: 'reject',
    pause: 'reject',
    resume: 'reject',
    abort: 'reject',
    retry: 'reject',
    supersede: 'Completed',
    join: 'Completed',
    leave: 'Completed',
  },
  Superseded: {
    tick: 'Superseded',
    approve: 'reject',
    pause: 'reject',
    resume: 'reject',
    abort: 'reject',
    retry: 'reject',
    supersede: 'Superseded',
    join: 'Superseded',
    leave: 'Superseded',
  },
  Aborted: {
    tick: 'Aborted',
    approve: 'reject',
    pause: 'reject',
    resume: 'reject',
    abort: 'reject',
    retry: 'Progressing',
    supersede: 'Superseded',
    join: 'Aborted',
    leave: 'Aborted',
  },
};

describe('every phase × every event', () => {
  for (const phase of ROLLOUT_PHASES) {
    test(`fixture-reaches-${phase}`, () => assert.equal(inPhase(phase).phase, phase));
    for (const [name, ev] of Object.entries(EVENTS)) {
      const want = TABLE[phase][name as keyof typeof EVENTS];
      test(`${phase}-on-${name}-${want === 'reject' ? 'is-rejected' : `becomes-${want}`}`, () => {
        const before = inPhase(phase);
        const frozen = JSON.stringify(before);
        if (want === 'reject') {
          assert.throws(
            () => step(before, ev, T0 + 5, new Health()),
            (err: unknown) => {
              assert.ok(err instanceof RolloutConflictError);
              assert.equal(err.code, 'CONFLICT');
              assert.match(err.message, new RegExp(`is ${phase}`));
              return true;
            },
          );
        } else {
          const res = step(before, ev, T0 + 5, new Health());
          assert.equal(res.rollout.phase, want);
          if (want !== phase)
            assert.ok(
              res.transitions.some((t) => t.cluster === '' && t.from === phase && t.to === want),
              'the phase change is a recorded transition',
            );
        }
        assert.equal(JSON.stringify(before), frozen, 'the saved rollout is never changed');
      });
    }
  }

  test('the-action-table-matches-the-transition-table', () => {
    for (const phase of ROLLOUT_PHASES)
      for (const action of ROLLOUT_ACTIONS) {
        const want = TABLE[phase][action] as RolloutPhase | 'reject';
        assert.equal(ACCEPTS[phase].includes(action), want !== 'reject', `${phase} ${action}`);
        if (want !== 'reject' && want !== phase)
          assert.ok(ROLLOUT_TRANSITIONS[phase].includes(want), `${phase} → ${want} allowed`);
      }
  });

  test('final-phases-never-change', () => {
    assert.deepEqual(ROLLOUT_TRANSITIONS.Completed, []);
    assert.deepEqual(ROLLOUT_TRANSITIONS.Superseded, []);
    for (const to of Object.values(CLUSTER_TRANSITIONS).flat())
      assert.ok(to in CLUSTER_TRANSITIONS, `cluster phase ${to} is known`);
  });
});

describe('what each event does to clusters', () => {
  test('join-places-a-cluster-in-its-stage-and-leave-forgets-it', () => {
    const r = run(
      inPhase('Progressing'),
      [EVENTS.join as RolloutEvent, EVENTS.leave as RolloutEvent],
      T0 + 5,
    );
    assert.equal(r.clusters['late-1']?.phase, 'Waiting');
    assert.equal(r.clusters['late-1']?.stage, 1);
    assert.equal(r.clusters['prod-2'], undefined);
  });

  test('approve-starts-the-stage-and-admits-its-clusters', () => {
    const r = run(inPhase('AwaitingApproval'), [{ type: 'approve', by: 'alice' }], T0 + 5);
    assert.equal(r.stages[1]?.approvedBy, 'alice');
    assert.equal(r.clusters['prod-1']?.phase, 'Updating');
    assert.equal(r.clusters['prod-2']?.phase, 'Updating');
  });

  test('approve-while-paused-counts-on-resume', () => {
    const paused = run(inPhase('Paused'), [{ type: 'approve', by: 'alice' }], T0 + 5);
    assert.equal(paused.clusters['prod-1']?.phase, 'Waiting', 'nothing starts while paused');
    const resumed = run(paused, [{ type: 'resume', by: 'alice' }], T0 + 6);
    assert.equal(resumed.phase, 'Progressing');
    assert.equal(resumed.clusters['prod-1']?.phase, 'Updating');
  });

  test('abort-rolls-back-every-cluster-that-took-the-new-revision', () => {
    const r = run(inPhase('Progressing'), [{ type: 'abort', by: 'bob' }], T0 + 5);
    assert.equal(r.clusters['canary-1']?.phase, 'RolledBack');
    assert.equal(r.clusters['prod-1']?.phase, 'Waiting', 'clusters not reached keep what they run');
    assert.equal(r.reason, 'aborted by bob');
  });

  test('retry-of-a-halted-rollout-gives-failed-clusters-a-new-deadline', () => {
    const r = run(inPhase('Halted'), [{ type: 'retry', by: 'bob' }], T0 + 70_000);
    assert.equal(r.clusters['canary-1']?.phase, 'Updating');
    assert.equal(r.clusters['canary-1']?.deadlineFromMs, T0 + 70_000);
  });

  test('retry-of-a-rolled-back-rollout-starts-again-from-the-first-stage', () => {
    const r = run(inPhase('RolledBack'), [{ type: 'retry', by: 'bob' }], T0 + 70_000);
    assert.equal(r.stage, 0);
    assert.equal(r.clusters['canary-1']?.phase, 'Updating');
    assert.equal(r.clusters['prod-1']?.phase, 'Waiting');
  });

  test('supersede-keeps-clusters-where-they-are', () => {
    const before = inPhase('Progressing');
    const r = run(before, [EVENTS.supersede as RolloutEvent], T0 + 5);
    assert.deepEqual(r.clusters, before.clusters);
    assert.equal(r.reason, 'superseded by fedcba987654');
  });
});

describe('tick', () => {
  test('stages-run-in-order-and-a-stage-waits-for-approval', () => {
    const h = new Health();
    let r = run(fresh(), [{ type: 'tick' }], T0, h);
    assert.deepEqual(Object.fromEntries(Object.entries(r.clusters).map(([n, c]) => [n, c.phase])), {
      'canary-1': 'Updating',
      'prod-1': 'Waiting',
      'prod-2': 'Waiting',
    });
    r = run(r, [{ type: 'tick' }], T0 + 10, h.healthy('canary-1', 'prod-1', 'prod-2'));
    assert.equal(r.phase, 'AwaitingApproval');
    assert.equal(r.clusters['prod-1']?.phase, 'Waiting', 'healthy reports do not admit anyone');
  });

  test('a-cluster-not-healthy-by-its-deadline-fails-and-halts-the-rollout', () => {
    const h = new Health().unhealthy(
      'Progressing (Deployment/web/web: 0 of 1 replicas available)',
      'canary-1',
    );
    let r = run(fresh(), [{ type: 'tick' }], T0, h);
    r = run(r, [{ type: 'tick' }], T0 + 59_999, h);
    assert.equal(r.clusters['canary-1']?.phase, 'Updating');
    r = run(r, [{ type: 'tick' }], T0 + 60_000, h);
    assert.equal(r.clusters['canary-1']?.phase, 'Failed');
    assert.equal(r.phase, 'Halted');
    assert.equal(
      r.reason,
      'halted: stage 1/2 (canary): 1 of 1 clusters failed (0 tolerated); canary-1: bundle web not healthy at abcdef123456 within 1m: Progressing (Deployment/web/web: 0 of 1 replicas available)',
    );
  });

  test('with-rollback-a-failed-stage-rolls-back-and-ends-rolled-back', () => {
    let r = run(fresh(twoStages('rollback')), [{ type: 'tick' }], T0);
    r = run(r, [{ type: 'tick' }], T0 + 60_000);
    assert.equal(r.phase, 'RolledBack');
    assert.equal(r.clusters['canary-1']?.phase, 'RolledBack');
    assert.match(r.reason, /^rolled back: stage 1\/2 \(canary\): 1 of 1 clusters failed/);
  });

  test('failures-within-the-budget-do-not-stop-the-rollout', () => {
    const strategy = { ...twoStages(), stages: [stage('all', { maxFailures: { percent: 50 } })] };
    let r = run(
      newRollout('web@x-1', 'web', 'abcdef1234567890', strategy, T0),
      [joinWaiting(0, 'a', 'b', 'c'), { type: 'tick' }],
      T0,
    );
    r = run(r, [{ type: 'tick' }], T0 + 60_000, new Health().healthy('a', 'b'));
    assert.equal(r.clusters.c?.phase, 'Failed');
    assert.equal(r.phase, 'Completed', 'one failure of three is within 50 %');
  });

  test('max-concurrent-admits-clusters-in-name-order-as-slots-free', () => {
    const strategy = {
      ...twoStages(),
      stages: [stage('one'), stage('all', { maxConcurrent: { count: 1 } })],
    };
    const h = new Health().healthy('canary-1');
    let r = run(fresh(strategy), [{ type: 'tick' }, { type: 'tick' }], T0, h);
    assert.equal(r.clusters['prod-1']?.phase, 'Updating');
    assert.equal(r.clusters['prod-2']?.phase, 'Waiting');
    r = run(r, [{ type: 'tick' }], T0 + 1, h.healthy('prod-1'));
    assert.equal(r.clusters['prod-2']?.phase, 'Updating');
  });

  test('soak-holds-the-next-stage-and-restarts-when-a-cluster-turns-unhealthy', () => {
    const strategy = {
      ...twoStages(),
      stages: [stage('canary', { soakMs: 30_000 }), stage('prod')],
    };
    const h = new Health().healthy('canary-1');
    let r = run(fresh(strategy), [{ type: 'tick' }, { type: 'tick' }], T0, h);
    assert.equal(r.stages[0]?.healthySinceMs, T0);
    assert.equal(nextWakeMs(r, T0), T0 + 30_000, 'woken when the soak ends');
    r = run(r, [{ type: 'tick' }], T0 + 20_000, h.unhealthy('Degraded', 'canary-1'));
    assert.equal(r.clusters['canary-1']?.phase, 'Updating');
    assert.equal(r.stages[0]?.healthySinceMs, 0);
    r = run(r, [{ type: 'tick' }], T0 + 25_000, h.healthy('canary-1'));
    r = run(r, [{ type: 'tick' }], T0 + 50_000, h);
    assert.equal(r.clusters['prod-1']?.phase, 'Waiting', 'soak restarted at 25 s');
    r = run(r, [{ type: 'tick' }], T0 + 55_000, h);
    assert.equal(r.clusters['prod-1']?.phase, 'Updating');
  });

  test('time-windows-gate-admission-and-wake-the-rollout-when-they-open', () => {
    // 2024-01-01 was a Monday; the window is Monday 09:00–10:00 UTC.
    const monday8 = Date.UTC(2024, 0, 1, 8, 0);
    const strategy = {
      ...twoStages(),
      stages: [stage('canary', { windows: [{ days: [1], startMinute: 540, endMinute: 600 }] })],
    };
    let r = run(fresh(strategy, monday8), [{ type: 'tick' }], monday8);
    assert.equal(r.clusters['canary-1']?.phase, 'Waiting');
    assert.equal(nextWakeMs(r, monday8), Date.UTC(2024, 0, 1, 9, 0));
    r = run(r, [{ type: 'tick' }], Date.UTC(2024, 0, 1, 9, 0));
    assert.equal(r.clusters['canary-1']?.phase, 'Updating');
  });

  test('paused-clusters-are-skipped-and-said-so-then-rejoin', () => {
    const h = new Health().pause('canary-1');
    let r = run(fresh(), [{ type: 'tick' }], T0, h);
    assert.equal(r.clusters['canary-1']?.phase, 'Skipped');
    assert.equal(r.clusters['canary-1']?.reason, 'cluster is paused');
    assert.equal(r.phase, 'AwaitingApproval', 'a stage of skipped clusters completes');
    r = run(r, [{ type: 'tick' }], T0 + 1, h.unknown('canary-1'));
    assert.equal(r.clusters['canary-1']?.phase, 'Waiting');
  });

  test('a-stage-with-no-clusters-needs-no-approval', () => {
    const r = run(
      fresh(),
      [
        { type: 'leave', cluster: 'prod-1' },
        { type: 'leave', cluster: 'prod-2' },
        { type: 'tick' },
      ],
      T0,
      new Health().healthy('canary-1'),
    );
    const done = run(r, [{ type: 'tick' }], T0 + 1, new Health().healthy('canary-1'));
    assert.equal(done.phase, 'Completed');
  });

  test('a-cluster-joining-after-completion-is-updated-at-once', () => {
    const r = run(inPhase('Completed'), [EVENTS.join as RolloutEvent, { type: 'tick' }], T0 + 10);
    assert.equal(r.phase, 'Completed');
    assert.equal(r.clusters['late-1']?.phase, 'Updating');
  });

  test('a-cluster-joining-a-started-stage-is-admitted-like-the-others', () => {
    const r = run(inPhase('Progressing'), [joinWaiting(0, 'canary-2'), { type: 'tick' }], T0 + 10);
    assert.equal(r.clusters['canary-2']?.phase, 'Updating');
  });

  test('deadline-wake-is-the-earliest-updating-deadline', () => {
    const r = run(fresh(), [{ type: 'tick' }], T0);
    assert.equal(nextWakeMs(r, T0), T0 + 60_000);
    assert.equal(nextWakeMs(inPhase('Completed'), T0), undefined);
  });

  test('a-scoped-tick-reads-only-the-clusters-whose-status-changed', () => {
    const strategy = { ...twoStages(), stages: [stage('all')] };
    let r = run(
      newRollout('web@x-1', 'web', 'abcdef1234567890', strategy, T0),
      [joinWaiting(0, 'a', 'b'), { type: 'tick' }],
      T0,
    );
    assert.equal(r.nextDeadlineMs, T0 + 60_000, 'the earliest deadline is kept');
    // Both report healthy, but only a's status is said to have changed.
    const h = new Health().healthy('a', 'b').only('a');
    r = run(r, [{ type: 'tick' }], T0 + 10, h);
    assert.equal(r.clusters.a?.phase, 'Healthy');
    assert.equal(r.clusters.b?.phase, 'Updating', 'b was not looked at');
    // The deadline still comes for b without any news about it.
    const late = run(r, [{ type: 'tick' }], T0 + 60_000, new Health().only());
    assert.equal(late.clusters.b?.phase, 'Failed');
    assert.equal(late.nextDeadlineMs, -1, 'nobody updates any more');
  });
});
