import assert from 'node:assert/strict';
import test from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseEvent, silentLogger } from '@flotilla/common';
import type { FlotillaEvent } from '@flotilla/common';
import { FleetStatus } from './fleet-status.js';
import { appliedEvent, healthEvent } from './testing.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
function liveHeap(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

const CLUSTERS = 2_000;
const BUNDLES = ['b0', 'b1', 'b2', 'b3', 'b4'];
const T0 = Date.parse('2026-12-03T12:00:00Z');
const REV = 'a'.repeat(40);

// The live heap folding each cluster's apply and bundle health adds, per cluster; `digest`
// gives a bundle's digest on a cluster and `healthDigest` the one its health names (the
// same on every cluster, or each its own).
function heapPerCluster(
  digest: (cluster: number, bundle: number) => string,
  healthDigest: (cluster: number, bundle: number) => string,
): number {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const name = (i: number) => `cluster-${String(i).padStart(5, '0')}`;
  status.setFleet(
    Array.from({ length: CLUSTERS }, (_, i) => ({
      name: name(i),
      labels: { env: 'prod' },
      desired: {
        revision: REV,
        digest: 'sha256:d',
        bundles: BUNDLES.map((b, j) => ({ name: b, digest: digest(i, j) })),
      },
    })),
  );
  const fold = (e: FlotillaEvent) => {
    const { kind, event } = parseEvent(JSON.stringify(e));
    status.foldEvent(kind, event);
  };
  const before = liveHeap();
  for (let i = 0; i < CLUSTERS; i++) {
    const digests = Object.fromEntries(BUNDLES.map((b, j) => [b, digest(i, j)]));
    fold(appliedEvent(name(i), REV, 'sha256:d', digests, new Date(T0 + i)));
    BUNDLES.forEach((b, j) =>
      fold(
        healthEvent(name(i), b, 'Ready', new Date(T0 + i + 1), {
          revision: REV,
          digest: healthDigest(i, j),
        }),
      ),
    );
  }
  return (liveHeap() - before) / CLUSTERS;
}

// Every cluster's record names the same digests and revision: held once, not per cluster.
test('status-records-share-the-digests-every-cluster-reports', () => {
  const common = (_: number, j: number) => `sha256:${String(j).repeat(64)}`;
  const same = heapPerCluster(common, common);
  // Nothing to share: every digest of every cluster is distinct (and as long).
  const distinct = (tag: string) => (i: number, j: number) =>
    `sha256:${tag}${String(j).repeat(55)}${String(i).padStart(8, '0')}`;
  const own = heapPerCluster(distinct('a'), distinct('h'));
  // Each record holds 5 bundle digests and 5 health digests and revisions (≈ 88 B each).
  assert.ok(
    own - same >= 600,
    `records of identical digests take ${same.toFixed(0)} B per cluster, of distinct ones ${own.toFixed(0)} B: shared strings should save ≥ 600 B`,
  );
});
