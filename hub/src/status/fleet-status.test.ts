import assert from 'node:assert/strict';
import test from 'node:test';
import type { AppliedData, EventKind } from '@flotilla/common';
import { createEvent, parseSelector, silentLogger } from '@flotilla/common';
import type { Ack__Output, Hello__Output } from '@flotilla/proto';
import { FleetStatus } from './fleet-status.js';

function model(start = 1_000_000) {
  const clock = { now: start };
  const status = new FleetStatus({
    offlineAfterMs: 45_000,
    logger: silentLogger(),
    now: () => clock.now,
  });
  status.setFleet([
    {
      name: 'edge-1',
      labels: { env: 'prod' },
      desired: { revision: 'rev-2'.padEnd(40, '0'), digest: 'sha256:d2' },
    },
    {
      name: 'edge-2',
      labels: { env: 'dev' },
      desired: { revision: 'rev-2'.padEnd(40, '0'), digest: 'sha256:d2' },
    },
  ]);
  return { status, clock };
}

const hello = (appliedDigest = '', appliedRevision = ''): Hello__Output => ({
  cluster: 'edge-1',
  agentVersion: 't',
  capabilities: null,
  appliedDigest,
  appliedRevision,
  protocolVersion: 1,
  sentAtMs: 0,
});
const ack = (digest: string, result: Ack__Output['result'], message = ''): Ack__Output => ({
  generation: 1,
  digest,
  revision: 'rev-2',
  result,
  message,
  objectsApplied: 1,
  objectsFailed: result === 'ACK_RESULT_APPLIED' ? 0 : 1,
});

function applied(
  digest: string,
  result: AppliedData['result'],
  time: Date,
  kind: EventKind = 'applied',
) {
  const data: AppliedData = {
    revision: 'rev-x',
    digest,
    generation: 1,
    result,
    durationMs: 5,
    bundles: [
      {
        name: 'app',
        digest: 'b',
        created: 1,
        configured: 2,
        unchanged: 3,
        deleted: 0,
        failed: result === 'applied' ? 0 : 1,
        failures: ['ConfigMap/default/a: boom'],
      },
    ],
  };
  return createEvent('edge-1', kind, data, time);
}

test('never-connected-cluster-is-pending', () => {
  const { status } = model();
  assert.equal(status.get('edge-1')?.state, 'Pending');
  assert.equal(status.get('edge-1')?.lastSeen, null);
});

test('connected-cluster-behind-is-progressing-then-ready-on-ack', () => {
  const { status } = model();
  status.connected('edge-1', 's1', hello('sha256:d1', 'rev-1'));
  assert.equal(status.get('edge-1')?.state, 'Progressing');
  status.acked('edge-1', ack('sha256:d2', 'ACK_RESULT_APPLIED'));
  const c = status.get('edge-1');
  assert.equal(c?.state, 'Ready');
  assert.equal(
    c?.appliedRevision,
    c?.desiredRevision,
    'same content means the cluster is at the desired commit',
  );
});

test('agent-reporting-the-desired-digest-at-hello-is-ready-at-once', () => {
  const { status } = model();
  status.connected('edge-1', 's1', hello('sha256:d2', 'rev-1'));
  assert.equal(status.get('edge-1')?.state, 'Ready');
});

test('failed-or-partial-apply-of-the-desired-digest-is-failed-with-message', () => {
  const { status } = model();
  status.connected('edge-1', 's1', hello());
  status.acked('edge-1', ack('sha256:d2', 'ACK_RESULT_PARTIAL', '1 object failed: ConfigMap/a'));
  assert.equal(status.get('edge-1')?.state, 'Failed');
  assert.match(status.get('edge-1')?.message ?? '', /ConfigMap\/a/);
  status.acked('edge-1', ack('sha256:d2', 'ACK_RESULT_APPLIED'));
  assert.equal(status.get('edge-1')?.state, 'Ready');
});

test('disconnected-past-offline-after-is-offline-and-replaced-session-is-not-a-disconnect', () => {
  const { status, clock } = model();
  status.connected('edge-1', 's1', hello('sha256:d2'));
  status.connected('edge-1', 's2', hello('sha256:d2'));
  status.disconnected('edge-1', 's1', 'replaced');
  assert.equal(status.get('edge-1')?.connected, true);
  status.disconnected('edge-1', 's2', 'timeout');
  assert.equal(status.get('edge-1')?.state, 'Ready', 'still within offlineAfter');
  clock.now += 46_000;
  assert.equal(status.get('edge-1')?.state, 'Offline');
});

test('duplicate-and-out-of-order-events-are-harmless', () => {
  const { status } = model();
  status.connected('edge-1', 's1', hello());
  const newer = applied('sha256:d2', 'applied', new Date(2_000_000));
  const older = applied('sha256:d2', 'failed', new Date(1_000_000), 'apply-failed');
  assert.equal(status.foldEvent('applied', newer), 'folded');
  assert.equal(
    status.foldEvent('applied', newer),
    'folded',
    'a redelivered event folds to the same result',
  );
  assert.equal(status.foldEvent('apply-failed', older), 'stale');
  const c = status.get('edge-1');
  assert.equal(c?.state, 'Ready');
  assert.deepEqual(c?.bundles, [
    { name: 'app', digest: 'b', created: 1, configured: 2, unchanged: 3, deleted: 0, failed: 0 },
  ]);
});

// An agent's events carry its own clock, acks the hub's: minutes of skew either way must
// not let a stale result win over a newer one.
for (const skewMs of [5 * 60_000, -5 * 60_000]) {
  const way = skewMs > 0 ? 'ahead' : 'behind';
  test(`an-agent-clock-five-minutes-${way}-ends-ready-after-a-failed-apply-and-its-retry`, () => {
    const { status, clock } = model();
    const agentNow = () => new Date(clock.now + skewMs);
    status.connected('edge-1', 's1', { ...hello(), sentAtMs: clock.now + skewMs - 20 });
    clock.now += 1_000;
    status.acked('edge-1', ack('sha256:d2', 'ACK_RESULT_FAILED', 'ConfigMap/a: boom'));
    status.foldEvent('apply-failed', applied('sha256:d2', 'failed', agentNow(), 'apply-failed'));
    assert.equal(status.get('edge-1')?.state, 'Failed');
    // The agent retries and succeeds: only its event says so.
    clock.now += 5_000;
    assert.equal(
      status.foldEvent('applied', applied('sha256:d2', 'applied', agentNow())),
      'folded',
    );
    assert.equal(status.get('edge-1')?.state, 'Ready');
  });

  test(`an-agent-clock-five-minutes-${way}-ends-ready-when-an-ack-follows-a-failed-event`, () => {
    const { status, clock } = model();
    const agentNow = () => new Date(clock.now + skewMs);
    status.connected('edge-1', 's1', hello());
    // Heartbeats teach the hub the offset; the slowest sample is not the estimate.
    status.seen('edge-1', 's1', clock.now + skewMs - 900);
    status.seen('edge-1', 's1', clock.now + skewMs - 10);
    status.foldEvent('apply-failed', applied('sha256:d2', 'failed', agentNow(), 'apply-failed'));
    assert.equal(status.get('edge-1')?.state, 'Failed');
    clock.now += 2_000;
    status.acked('edge-1', ack('sha256:d2', 'ACK_RESULT_APPLIED'));
    assert.equal(status.get('edge-1')?.state, 'Ready');
    // A redelivery of the failure, even stamped by the agent's clock, changes nothing.
    clock.now += 1_000;
    status.foldEvent(
      'apply-failed',
      applied('sha256:d2', 'failed', new Date(clock.now - 3_000 + skewMs), 'apply-failed'),
    );
    assert.equal(status.get('edge-1')?.state, 'Ready');
  });
}

test('the-clock-offset-is-kept-in-the-record-and-a-new-session-learns-it-again', () => {
  const { status, clock } = model();
  status.connected('edge-1', 's1', { ...hello(), sentAtMs: clock.now - 120_000 });
  const saved = status.takeDirty().find((r) => r.name === 'edge-1');
  assert.equal(saved?.clockOffsetMs, 120_000);
  // A restarted agent with a corrected clock: the old estimate does not linger.
  status.connected('edge-1', 's2', { ...hello(), sentAtMs: clock.now });
  const again = status.takeDirty().find((r) => r.name === 'edge-1');
  assert.equal(again?.clockOffsetMs, 0);
  // Nonsense from an agent (a clock decades off) is not an offset.
  status.seen('edge-1', 's2', 1);
  assert.equal(
    status.takeDirty().find((r) => r.name === 'edge-1'),
    undefined,
    'nothing changed',
  );
});

test('malformed-event-data-throws-validation-error', () => {
  const { status } = model();
  const bad = createEvent('edge-1', 'applied', { digest: 1 });
  assert.throws(() => status.foldEvent('applied', bad), /digest and revision/);
  // Drift events are folded now: one without a bundle is malformed, not ignored.
  assert.throws(() => status.foldEvent('drift-detected', bad), /names no bundle/);
});

test('selector-filters-by-labels-and-unknown-agents-show-up', () => {
  const { status } = model();
  status.connected('stray', 's9', { ...hello(), cluster: 'stray' });
  assert.deepEqual(
    status.list(parseSelector('env=prod')).map((c) => c.name),
    ['edge-1'],
  );
  assert.deepEqual(
    status.list().map((c) => c.name),
    ['edge-1', 'edge-2', 'stray'],
  );
  assert.equal(status.get('stray')?.state, 'OutOfSync');
});

test('restored-records-are-served-as-disconnected', () => {
  const { status } = model();
  status.connected('edge-1', 's1', hello('sha256:d2'));
  const records = status.takeDirty();
  assert.equal(records.length, 2);
  const other = new FleetStatus({
    offlineAfterMs: 45_000,
    logger: silentLogger(),
    now: () => 1_000_000,
  });
  other.restore(records);
  assert.equal(other.get('edge-1')?.connected, false);
  assert.equal(other.get('edge-1')?.appliedDigest, 'sha256:d2');
  assert.deepEqual(status.takeDirty(), [], 'dirty set is cleared');
});

test('a-restarted-hub-gives-restored-clusters-offlineAfter-to-dial-back-before-a-rollout-counts-them-offline', () => {
  const { status, clock } = model();
  status.connected('edge-1', 's1', hello('sha256:d2'));
  const records = status.takeDirty();
  // The hub restarts a minute later: the saved record was last seen long ago.
  const restarted = { now: clock.now + 60_000 };
  const other = new FleetStatus({
    offlineAfterMs: 45_000,
    logger: silentLogger(),
    now: () => restarted.now,
  });
  other.restore(records);
  assert.equal(other.bundleHealth('edge-1', 'app')?.offline, false, 'not yet: it may dial back');
  restarted.now += 45_001;
  assert.equal(other.bundleHealth('edge-1', 'app')?.offline, true, 'it did not come back');
});

test('touch-listeners-hear-of-every-change-and-of-a-cluster-going-offline', () => {
  const { status, clock } = model();
  const told: string[] = [];
  status.onTouched((c) => told.push(c));
  status.connected('edge-1', 's1', hello());
  status.disconnected('edge-1', 's1', 'agent ended the stream');
  assert.deepEqual(told, ['edge-1', 'edge-1']);
  told.length = 0;
  clock.now += 45_001;
  status.sweep();
  // edge-1 is offline now, edge-2 never connected: a rollout must look at both again.
  assert.deepEqual(told, ['edge-1', 'edge-2']);
  status.sweep();
  assert.deepEqual(told, ['edge-1', 'edge-2'], 'once');
  assert.equal(status.bundleHealth('edge-1', 'app')?.offline, true);
});

test('clusters-only-the-fleet-repo-named-disappear-when-their-files-go-and-known-ones-stay', () => {
  const { status } = model();
  const rev = 'rev-3'.padEnd(40, '0');
  // A push declaring many made-up clusters, then their removal.
  const hostile = Array.from({ length: 500 }, (_, i) => ({
    name: `bogus-${i}`,
    labels: {},
    desired: { revision: rev, digest: 'sha256:d3' },
  }));
  const edge1 = {
    name: 'edge-1',
    labels: { env: 'prod' },
    desired: { revision: rev, digest: 'sha256:d3' },
  };
  status.setFleet([edge1, ...hostile]);
  status.connected('edge-1', 's1', hello());
  assert.equal(status.list().length, 501, 'edge-2 (never connected) went with its file');
  assert.deepEqual(status.takeRemoved(), ['edge-2']);
  status.takeDirty();
  status.setFleet([edge1]);
  assert.deepEqual(
    status.list().map((c) => c.name),
    ['edge-1'],
  );
  const removed = status.takeRemoved().sort();
  assert.equal(removed.length, 500);
  assert.ok(removed.every((n) => n.startsWith('bogus-')));
  assert.ok(!status.takeDirty().some((r) => r.name.startsWith('bogus-')));
  assert.deepEqual(status.takeRemoved(), [], 'taken once');

  // A cluster an agent has connected for keeps its record, shown as not declared.
  status.setFleet([]);
  assert.deepEqual(
    status.list().map((c) => c.name),
    ['edge-1'],
  );
  assert.match(status.get('edge-1')?.message ?? '', /not declared in the fleet repo/);
  // A failed delete is retried, unless the cluster came back meanwhile.
  status.markRemoved(['bogus-1', 'edge-1']);
  assert.deepEqual(status.takeRemoved(), ['bogus-1']);
});
