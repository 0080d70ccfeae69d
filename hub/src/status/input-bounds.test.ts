// The hub's edge for agent events: every field is bounded when read, the excess cut and
// counted, the cluster marked degraded; a record over its size budget is shrunk.
import assert from 'node:assert/strict';
import test from 'node:test';
import { EVENT_LIMITS, durations, silentLogger } from '@flotilla/common';
import { readApplied, readDrift, readHealth } from './event-data.js';
import { FleetStatus, MAX_UNLISTED_BUNDLES } from './fleet-status.js';
import { emptyFacts, emptyRecord } from './model.js';
import { shrinkRecord } from './record-budget.js';
import { appliedEvent, healthEvent } from './testing.js';

const T0 = Date.parse('2026-11-26T12:00:00Z');

function model() {
  const clock = { now: T0 };
  const status = new FleetStatus({
    offlineAfterMs: 45_000,
    logger: silentLogger(),
    now: () => clock.now,
  });
  status.setFleet([
    {
      name: 'edge-1',
      labels: {},
      desired: {
        revision: 'r1',
        digest: 'sha256:d1',
        bundles: [{ name: 'app', digest: 'sha256:a' }],
      },
    },
  ]);
  const cuts: string[] = [];
  status.onCut((cluster, what) => cuts.push(`${cluster}:${what}`));
  return { status, clock, cuts };
}

test('a-health-reason-of-600-kb-is-cut-counted-and-marks-the-cluster', () => {
  const { status, clock, cuts } = model();
  const reason = `apps/Deployment/x/web: ${'r'.repeat(600_000)}`;
  status.foldEvent(
    'health-changed',
    healthEvent('edge-1', 'app', 'Degraded', new Date(T0), { reasons: [reason] }),
  );
  const d = status.describe('edge-1');
  const kept = d?.deployments[0]?.healthReason ?? '';
  assert.equal(kept.length, EVENT_LIMITS.textChars);
  assert.ok(kept.startsWith('apps/Deployment/x/web: rrr') && kept.endsWith('…'));
  assert.deepEqual(cuts, ['edge-1:health.reason']);
  assert.equal(d?.cluster.degraded, 'health.reason over its limit, cut');
  assert.equal(d?.cluster.lastDegraded, new Date(T0).toISOString());
  clock.now += durations.statusDegradedFor + 1;
  assert.equal(status.get('edge-1')?.degraded, '', 'no longer shown an hour later');
});

test('made-up-bundles-beyond-the-allowance-are-refused-and-the-record-stays-small', () => {
  const { status, cuts } = model();
  for (let i = 0; i < 200; i++) {
    const ev = healthEvent('edge-1', `made-up-${i}`, 'Degraded', new Date(T0 + i), {
      reasons: ['x'.repeat(5_000)],
    });
    status.foldEvent('health-changed', ev);
  }
  const rec = status.takeDirty()[0];
  assert.equal(Object.keys(rec?.bundleFacts ?? {}).length, MAX_UNLISTED_BUNDLES);
  assert.ok(cuts.includes('edge-1:bundles.unlisted'));
  assert.ok(JSON.stringify(rec).length < 64 * 1024, 'a few KiB, not megabytes');
  // The bundle the cluster should run still folds.
  status.foldEvent('health-changed', healthEvent('edge-1', 'app', 'Ready', new Date(T0 + 500)));
  assert.equal(status.describe('edge-1')?.deployments[0]?.health, 'Ready');
});

test('a-bundle-name-that-is-no-dns-label-names-no-bundle', () => {
  const cuts: string[] = [];
  assert.throws(
    () => readHealth({ bundle: 'B'.repeat(600_000), health: 'Ready' }, (w) => cuts.push(w)),
    /names no valid bundle/,
  );
  assert.deepEqual(cuts, ['health.bundle']);
});

test('drift-event-lists-names-and-paths-are-bounded', () => {
  const cuts = new Set<string>();
  const long = 'n'.repeat(10_000);
  const object = (i: number) => ({
    bundle: i === 0 ? 'Not_A_Label' : 'app',
    object: { kind: long, namespace: 'apps', name: `${i}${long}` },
    changes: Array.from({ length: 1_000 }, (_, j) => ({ path: `/data/${j}${long}`, new: long })),
    managers: Array.from({ length: 50 }, () => long),
  });
  const facts = readDrift(
    { bundle: 'app', objects: Array.from({ length: 100 }, (_, i) => object(i)) },
    (w) => cuts.add(w),
  );
  assert.equal(facts.objects.length, EVENT_LIMITS.objects);
  for (const o of facts.objects) {
    assert.equal(o.bundle, 'app', 'an invalid bundle name falls back to the event bundle');
    assert.equal(o.fields.length, EVENT_LIMITS.fields);
    assert.ok(o.fields.every((f) => f.length <= EVENT_LIMITS.textChars));
    assert.ok(o.kind.length <= EVENT_LIMITS.nameChars && o.name.length <= EVENT_LIMITS.nameChars);
    assert.ok(o.changedBy.length <= EVENT_LIMITS.managers);
  }
  assert.ok(JSON.stringify(facts).length < 250_000, 'bounded whatever was sent');
  for (const w of ['drift.objects', 'drift.fields', 'drift.path', 'drift.object', 'drift.bundle'])
    assert.ok(cuts.has(w), w);
});

test('applied-event-bundles-texts-and-counts-are-bounded', () => {
  const cuts = new Set<string>();
  const ev = appliedEvent('edge-1', 'r1', 'sha256:d1', { app: 'sha256:a' }, new Date(T0));
  const data = {
    ...ev.data,
    message: 'm'.repeat(100_000),
    bundles: [
      {
        ...ev.data.bundles[0],
        failed: 1,
        failures: Array.from({ length: 50 }, () => 'f'.repeat(9_000)),
      },
      { ...ev.data.bundles[0], name: 'Bad Name' },
      {
        ...ev.data.bundles[0],
        name: 'counts',
        created: -1,
        configured: 1.5,
        deleted: Number.NaN,
        unchanged: 1e12,
      },
      ...Array.from({ length: 3_000 }, (_, i) => ({ ...ev.data.bundles[0], name: `b${i}` })),
    ],
  };
  const d = readApplied(data, (w) => cuts.add(w));
  assert.equal(d.message?.length, EVENT_LIMITS.textChars);
  assert.equal(d.bundles.length, EVENT_LIMITS.bundles - 1, 'capped, and the bad name dropped');
  assert.equal(d.bundles[0]?.failures.length, EVENT_LIMITS.texts);
  assert.ok(d.bundles[0]?.failures.every((f) => f.length === EVENT_LIMITS.textChars));
  const counts = d.bundles.find((b) => b.name === 'counts');
  assert.deepEqual(
    [counts?.created, counts?.configured, counts?.deleted, counts?.unchanged],
    [0, 0, 0, EVENT_LIMITS.count],
  );
  for (const w of [
    'applied.message',
    'applied.bundles',
    'applied.bundle',
    'applied.failure',
    'applied.count',
  ])
    assert.ok(cuts.has(w), w);
  // An event within the limits is the agent's own object: no copy on the hot path.
  assert.equal(
    readApplied(ev.data, () => assert.fail('nothing to cut')),
    ev.data,
  );
});

test('a-record-over-its-budget-drops-settled-drift-objects-first', () => {
  const rec = emptyRecord('edge-1');
  rec.desiredBundles = [{ name: 'app', digest: 'sha256:a' }];
  const facts = emptyFacts();
  facts.objects = {};
  for (let i = 0; i < 200; i++)
    facts.objects[`ConfigMap/apps/${i}${'n'.repeat(200)}`] = { atMs: i, drifted: i < 3 };
  rec.bundleFacts = { app: facts, 'made-up': { ...emptyFacts(), lastError: 'e'.repeat(1_000) } };
  const budget = 10_000;
  const fits = (r: typeof rec) => JSON.stringify(r).length <= budget;
  assert.equal(fits(rec), false);
  assert.deepEqual(shrinkRecord(rec, fits), ['settled drift objects']);
  assert.equal(Object.keys(rec.bundleFacts.app?.objects ?? {}).length, 3, 'the drifted ones stay');
  assert.ok(rec.bundleFacts['made-up'], 'nothing more dropped than needed');
  assert.deepEqual(
    shrinkRecord(rec, () => false),
    ['settled drift objects', 'drifted object names', 'facts of unknown bundles', 'long messages'],
  );
  assert.equal(rec.bundleFacts['made-up'], undefined);
  assert.equal(rec.bundleFacts.app?.drifted, 0, 'counts are kept as they were');
});

test('a-record-shrunk-or-not-saved-shows-as-degraded-with-the-reason', () => {
  const { status, cuts } = model();
  status.shrink('edge-1', () => false, '256 KiB');
  assert.match(
    status.get('edge-1')?.degraded ?? '',
    /^status record over its 256 KiB budget: .* dropped$/,
  );
  status.unsaved('edge-1', 'maximum payload exceeded');
  assert.equal(status.get('edge-1')?.degraded, 'status not saved: maximum payload exceeded');
  assert.deepEqual(cuts, ['edge-1:status.record', 'edge-1:status.save']);
});

test('a-waiting-bundles-for-and-reason-are-bounded-and-kept', () => {
  const cuts = new Set<string>();
  const ev = appliedEvent('edge-1', 'r1', 'sha256:d1', { app: 'sha256:a' }, new Date(T0), {
    result: 'waiting',
    kind: 'applied',
  });
  const fits = {
    ...ev.data,
    bundles: [{ ...ev.data.bundles[0]!, waiting: { for: 'db', reason: 'waiting for bundle db' } }],
  };
  // Within the limits: the agent's own object, waiting and all.
  assert.equal(
    readApplied(fits, () => assert.fail('nothing to cut')),
    fits,
  );
  const huge = {
    ...ev.data,
    bundles: [{ ...ev.data.bundles[0]!, waiting: { for: 'db', reason: 'r'.repeat(50_000) } }],
  };
  const d = readApplied(huge, (w) => cuts.add(w));
  assert.equal(d.result, 'waiting');
  assert.equal(d.bundles[0]?.waiting?.for, 'db');
  assert.equal(d.bundles[0]?.waiting?.reason.length, EVENT_LIMITS.textChars);
  assert.ok(cuts.has('applied.waiting'));
});
