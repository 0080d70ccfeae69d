// Gating reuses a cluster's last result only when neither its head state nor its
// bundles' committed state changed for it: the result must equal gating everything anew.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bundleDigest, desiredStateDigest } from '@flotilla/common';
import type { BundleDesiredState, DesiredState } from '@flotilla/common';
import type { BundleState } from './bundle-state.js';
import { Gate } from './gate.js';
import type { GateInputs } from './gate.js';
import { newRollout, step } from './machine.js';
import { Health, stage } from './testing.js';

const CLUSTERS = ['edge-1', 'edge-2', 'edge-3'];

function rendering(version: number): BundleDesiredState {
  const body = {
    name: 'web',
    drift: { mode: 'enforce' as const, ignore: [] },
    forceConflicts: true,
    objects: [
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'web' },
        data: { v: String(version) },
      },
    ],
  };
  return { ...body, digest: bundleDigest(body) };
}

const v1 = rendering(1);
const v2 = rendering(2);
const head = new Map<string, DesiredState>(
  CLUSTERS.map((c) => [
    c,
    { cluster: c, revision: '2'.repeat(40), digest: desiredStateDigest(c, [v2]), bundles: [v2] },
  ]),
);

function state(): BundleState {
  const strategy = {
    stages: [stage('one', { maxConcurrent: { count: 1 } })],
    progressDeadlineMs: 60_000,
    onFailure: 'halt' as const,
  };
  let r = newRollout('web@222222222222-1', 'web', '2'.repeat(40), strategy, 1_000);
  r = step(
    r,
    {
      type: 'join',
      clusters: CLUSTERS.map((cluster) => ({
        cluster,
        stage: 0,
        phase: 'Waiting',
        reason: 'waits',
      })),
    },
    1_000,
    new Health(),
  ).rollout;
  return {
    bundle: 'web',
    strategy,
    slots: new Map(
      CLUSTERS.map((c) => [c, { cur: v1.digest, stable: v1.digest, to: v2.digest, stage: 0 }]),
    ),
    revisionOf: new Map([
      [v1.digest, '1'.repeat(40)],
      [v2.digest, '2'.repeat(40)],
    ]),
    rollout: r,
    seq: 1,
    hseq: 0,
    outbox: [],
  };
}

function inputs(s: BundleState, changed: GateInputs['changed']): GateInputs {
  return {
    bundles: new Map([['web', s]]),
    strategyBundles: new Set(['web']),
    restored: true,
    baselineFromHead: false,
    rendering: (d) => [v1, v2].find((r) => r.digest === d),
    lastSent: () => undefined,
    changed,
  };
}

test('gating-reuses-only-clusters-nothing-changed-for-and-equals-gating-anew', () => {
  const s = state();
  const gate = new Gate();
  const first = gate.run(head, inputs(s, undefined));
  for (const c of CLUSTERS) assert.equal(first.states.get(c)?.bundles[0]?.digest, v1.digest);
  assert.match(first.holds.get('edge-1')?.[0]?.reason ?? '', /waits for a free slot/);

  // edge-1 is admitted: its slot and run change; the others do not.
  const r = s.rollout;
  assert.ok(r);
  const admitted = step(r, { type: 'tick' }, 2_000, new Health()).rollout;
  s.rollout = {
    ...r,
    clusters: { ...r.clusters, 'edge-1': admitted.clusters['edge-1'] },
  } as typeof r;
  s.slots.set('edge-1', { cur: v2.digest, stable: v1.digest, to: v2.digest, stage: 0 });
  const changed = { clusters: new Map([['web', new Set(['edge-1'])]]), bundles: new Set<string>() };
  const next = gate.run(head, inputs(s, changed));
  const anew = new Gate().run(head, inputs(s, undefined));
  assert.deepEqual(next.states, anew.states, 'the same states as gating everything');
  assert.deepEqual(next.holds, anew.holds, 'the same holds');
  assert.equal(
    next.states.get('edge-1')?.digest,
    head.get('edge-1')?.digest,
    'edge-1 gets the head',
  );
  assert.equal(next.states.get('edge-2'), first.states.get('edge-2'), 'edge-2 reused as it was');

  // A rollout-level change (halted) changes every hold reason of the bundle.
  s.rollout = { ...s.rollout, phase: 'Halted', reason: 'halted: by test' } as typeof r;
  const halted = gate.run(head, inputs(s, { clusters: new Map(), bundles: new Set(['web']) }));
  assert.match(halted.holds.get('edge-2')?.[0]?.reason ?? '', /halted: by test/);
  assert.deepEqual(halted.holds, new Gate().run(head, inputs(s, undefined)).holds);
});
