import assert from 'node:assert/strict';
import test from 'node:test';
import { createEvent } from '@flotilla/common';
import { appliedEvent, driftEvent } from '../status/testing.js';
import { HistoryLog } from './history-log.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const ago = (h: number) => new Date(NOW - h * 3_600_000);
const R1 = '1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const R2 = '2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';

function log() {
  const clock = { now: NOW };
  const h = new HistoryLog({ retentionMs: 48 * 3_600_000, now: () => clock.now });
  h.add('applied', appliedEvent('edge-1', R1, 'sha256:d1', { app: 'sha256:a1' }, ago(30)));
  h.add('applied', appliedEvent('edge-2', R2, 'sha256:d2', { app: 'sha256:a2' }, ago(3)));
  h.add(
    'drift-detected',
    driftEvent('edge-1', 'app', ago(2), {
      fields: ['/spec/replicas'],
      changedBy: ['kubectl-edit'],
    }),
  );
  // Out of order: older than the drift, arrives after it.
  h.add('applied', appliedEvent('edge-1', R2, 'sha256:d2', { app: 'sha256:a2' }, ago(4)));
  return { h, clock };
}

test('history-answers-by-revision-digest-cluster-and-time', () => {
  const { h } = log();
  assert.deepEqual(
    h.query({ revision: R2.slice(0, 7) }).map((e) => e.cluster),
    ['edge-2', 'edge-1'],
  );
  assert.deepEqual(
    h.query({ bundleDigest: 'sha256:a1' }).map((e) => e.cluster),
    ['edge-1'],
  );
  assert.deepEqual(
    h.query({ cluster: 'edge-1' }).map((e) => e.kind),
    ['drift-detected', 'applied', 'applied'],
    'newest first, out-of-order insert sorted',
  );
  const drift = h.query({ kinds: ['drift-detected'], sinceMs: NOW - 24 * 3_600_000 });
  assert.equal(drift.length, 1);
  assert.deepEqual(drift[0]?.drift[0], {
    bundle: 'app',
    kind: 'Deployment',
    namespace: 'apps',
    name: 'web',
    fields: ['/spec/replicas'],
    changedBy: ['kubectl-edit'],
  });
  assert.equal(h.query({ sinceMs: NOW - 24 * 3_600_000 }).length, 3);
  assert.equal(h.query({ limit: 1 }).length, 1);
});

test('history-drops-duplicates-and-expired-events', () => {
  const { h, clock } = log();
  const ev = createEvent('edge-3', 'health-changed', { bundle: 'app', health: 'Degraded' }, ago(1));
  assert.equal(h.add('health-changed', ev), true);
  assert.equal(h.add('health-changed', ev), false, 'same id');
  assert.equal(
    h.add('applied', appliedEvent('edge-1', R1, 'sha256:d1', {}, ago(100))),
    false,
    'older than retention',
  );
  assert.equal(h.size, 5);
  clock.now += 20 * 3_600_000;
  h.prune();
  assert.equal(h.size, 4, 'the 30 h old event is now 50 h old');
  assert.throws(
    () => h.add('applied', createEvent('edge-1', 'applied', { nope: 1 }, ago(1))),
    /needs digest and revision/,
  );
});

test('a-flooding-cluster-loses-only-its-own-oldest-history', () => {
  const h = new HistoryLog({
    retentionMs: 48 * 3_600_000,
    now: () => NOW,
    maxClusterBytes: 200_000,
  });
  for (let i = 0; i < 5; i++)
    h.add('drift-detected', driftEvent('edge-1', 'app', ago(10 - i), { name: `calm-${i}` }));
  const paths = Array.from({ length: 20 }, (_, j) => `/data/${j}${'p'.repeat(1_000)}`);
  for (let i = 0; i < 500; i++)
    h.add('drift-detected', driftEvent('rogue', 'app', ago(5 - i / 1_000), { fields: paths }));
  assert.equal(h.query({ cluster: 'edge-1' }).length, 5, 'the other cluster keeps all of its own');
  const kept = h.query({ cluster: 'rogue', limit: 1_000 });
  assert.ok(h.bytesOf('rogue') <= 200_000, `rogue holds ${h.bytesOf('rogue')} bytes`);
  assert.ok(kept.length > 0 && kept.length < 20, `rogue keeps its newest ${kept.length}`);
  assert.equal(kept[0]?.timeMs, Math.round(ago(5 - 499 / 1_000).getTime()), 'the newest');
  assert.equal(h.size, 5 + kept.length);
  assert.equal(h.query({ limit: 10_000 }).length, 5 + kept.length, 'released entries never show');
  // An event the budget dropped may arrive again (a redelivery): it is simply new then.
  h.prune();
  assert.equal(h.size, 5 + kept.length);
});

test('history-stays-within-its-total-byte-budget', () => {
  const h = new HistoryLog({ retentionMs: 48 * 3_600_000, now: () => NOW, maxBytes: 100_000 });
  for (let i = 0; i < 1_000; i++)
    h.add('drift-detected', driftEvent(`edge-${i % 50}`, 'app', ago(10 - i / 1_000)));
  assert.ok(h.bytesOf() <= 100_000, `${h.bytesOf()} bytes`);
  assert.ok(h.size > 0 && h.size < 1_000);
});

test('late-events-are-placed-by-time-and-ties-keep-arrival-order', () => {
  const h = new HistoryLog({ retentionMs: 48 * 3_600_000, now: () => NOW });
  // Three agents' events interleaved as JetStream delivers them, one agent's clock 30 s
  // behind, several with the same millisecond.
  const at = (s: number) => new Date(NOW - 3_600_000 + s * 1000);
  const arrivals: [string, number][] = [];
  for (let i = 0; i < 50; i++) {
    arrivals.push(['edge-a', i], ['edge-b', i], ['edge-late', i - 30]);
    if (i % 10 === 0) arrivals.push(['edge-a', i]);
  }
  const ids: string[] = [];
  for (const [cluster, s] of arrivals) {
    const ev = appliedEvent(cluster, R1, 'sha256:d1', { app: 'sha256:a1' }, at(s));
    ids.push(ev.id);
    h.add('applied', ev);
  }
  const all = h.query({ limit: 10_000 }).reverse();
  assert.equal(all.length, arrivals.length);
  const times = all.map((e) => Date.parse(e.time));
  assert.deepEqual(
    times,
    [...times].sort((a, b) => a - b),
    'oldest to newest',
  );
  // Entries of one time stay in the order they arrived.
  const arrival = new Map(ids.map((id, i) => [id, i]));
  for (let i = 1; i < all.length; i++) {
    const [a, b] = [all[i - 1], all[i]];
    if (a && b && a.time === b.time)
      assert.ok((arrival.get(a.id) ?? 0) < (arrival.get(b.id) ?? 0), `tie at ${a.time}`);
  }
  assert.deepEqual(
    h.query({ cluster: 'edge-late', limit: 3 }).map((e) => Date.parse(e.time)),
    [at(19), at(18), at(17)].map((d) => d.getTime()),
  );
});

test('an-apply-records-the-chart-version-each-bundle-came-from-and-bounds-it', async () => {
  const { summarize } = await import('../cli/history.js');
  const h = new HistoryLog({ retentionMs: 48 * 3_600_000, now: () => NOW });
  const chart = (version: string, repo = 'https://charts.example.com') => ({
    repo,
    name: 'podinfo',
    version,
    digest: `sha256:${version.replace(/\./g, '').padEnd(64, '0')}`,
  });
  const applied = (version: string, repo: string | undefined, at: Date) => {
    const e = appliedEvent(
      'edge-1',
      R1,
      'sha256:d1',
      { podinfo: 'sha256:a1', plain: 'sha256:b1' },
      at,
    );
    e.data.bundles[0]!.chart = chart(version, repo);
    return e;
  };
  h.add('applied', applied('6.5.0', undefined, ago(2)));
  // A new version within the range: same commit, new desired state, its own entry.
  h.add('applied', applied('6.5.1', `https://${'x'.repeat(5000)}`, ago(1)));
  const [newer, older] = h.query({ bundle: 'podinfo' });
  assert.deepEqual(older?.charts, [{ bundle: 'podinfo', ...chart('6.5.0') }]);
  assert.equal(newer?.charts?.[0]?.version, '6.5.1');
  assert.ok(
    (newer?.charts?.[0]?.repo.length ?? 0) <= 1024,
    'an oversized field is cut at the edge',
  );
  assert.equal(summarize(older!), '2 bundles: podinfo (chart podinfo 6.5.0), plain');
});

test('a-flood-at-the-fleet-wide-cap-pushes-out-only-the-flooders-history', () => {
  const h = new HistoryLog({
    retentionMs: 48 * 3_600_000,
    now: () => NOW,
    maxBytes: 200_000,
    maxEntries: 1_000,
  });
  // Fifty calm clusters, their history older than anything the flood brings.
  for (let c = 0; c < 50; c++)
    for (let i = 0; i < 4; i++)
      h.add('drift-detected', driftEvent(`calm-${c}`, 'app', ago(20 - i), { name: `o${i}` }));
  for (let i = 0; i < 3_000; i++)
    h.add('drift-detected', driftEvent('rogue', 'app', ago(5 - i / 10_000), { name: `r${i}` }));
  assert.ok(h.bytesOf() <= 200_000 && h.size <= 1_000, `${h.bytesOf()} bytes, ${h.size} entries`);
  for (let c = 0; c < 50; c++)
    assert.equal(h.query({ cluster: `calm-${c}` }).length, 4, `calm-${c} keeps its history`);
  const rogue = h.query({ cluster: 'rogue', limit: 10_000 });
  assert.ok(rogue.length > 0 && rogue.length < 3_000, `rogue keeps its newest ${rogue.length}`);
  assert.equal(h.size, 200 + rogue.length);
});
