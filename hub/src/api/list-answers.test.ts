// The fleet-wide list answers (`flotilla status`, `flotilla get deployments`) are made of
// each cluster's cached JSON bytes: an answer is exactly what serializing the model gives,
// a change shows in the very next answer, and identical queries at the same time serialize
// each cluster once between them.
import assert from 'node:assert/strict';
import test from 'node:test';
import { silentLogger } from '@flotilla/common';
import { FleetStatus } from '../status/fleet-status.js';
import { appliedEvent, healthEvent } from '../status/testing.js';
import { startHttpApi } from './http.js';

const REV = 'feedc0de'.padEnd(40, '0');
const BUNDLES = { app: 'sha256:a', web: 'sha256:w' };
// Enough clusters for an answer of several 64 KiB chunks.
const N = 300;
const names = Array.from({ length: N }, (_, i) => `edge-${String(i).padStart(3, '0')}`);

async function fleetApi() {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const bundles = Object.entries(BUNDLES).map(([name, digest]) => ({ name, digest }));
  status.setFleet(
    names.map((name, i) => ({
      name,
      // Non-ASCII text in a label: bytes and characters differ.
      labels: { env: i % 2 ? 'prod' : 'dev', team: 'équipe-ü' },
      desired: { revision: REV, digest: 'sha256:d1', bundles },
    })),
  );
  for (const name of names) {
    status.connected(name, `s-${name}`, {
      cluster: name,
      agentVersion: '1.2.3',
      appliedDigest: '',
      appliedRevision: '',
      protocolVersion: 1,
      sentAtMs: 0,
    });
    status.foldEvent('applied', appliedEvent(name, REV, 'sha256:d1', BUNDLES, new Date()));
  }
  const srv = await startHttpApi('127.0.0.1', 0, {
    status,
    sources: { sources: () => [] },
    readiness: { check: () => ({ ready: true, reasons: [] }) },
    logger: silentLogger(),
  });
  const get = async (path: string): Promise<Record<string, unknown>> => {
    const res = await fetch(`http://127.0.0.1:${srv.port}${path}`);
    assert.equal(res.status, 200);
    return (await res.json()) as Record<string, unknown>;
  };
  return { status, srv, get };
}

test('a-list-answer-is-the-models-json-and-shows-a-change-in-the-next-answer', async () => {
  const { status, srv, get } = await fleetApi();
  try {
    const prod = `/api/v1/deployments?selector=${encodeURIComponent('env=prod')}`;
    assert.deepEqual(await get('/api/v1/clusters'), { clusters: status.list() });
    assert.deepEqual(await get(prod), {
      deployments: JSON.parse(JSON.stringify(status.deployments({ selector: prodSelector() }))),
    });
    // Cached now. One cluster's web turns Degraded: the next answers say so.
    const changed = names[7] as string;
    status.foldEvent(
      'health-changed',
      healthEvent(changed, 'web', 'Degraded', new Date(), { revision: REV, digest: 'sha256:w' }),
    );
    const rows = (await get(prod)).deployments as {
      cluster: string;
      bundle: string;
      state: string;
    }[];
    assert.equal(rows.find((r) => r.cluster === changed && r.bundle === 'web')?.state, 'Degraded');
    assert.equal(rows.filter((r) => r.state === 'Degraded').length, 1);
    const clusters = (await get('/api/v1/clusters')).clusters;
    assert.deepEqual(clusters, status.list());
    const bundle = await get('/api/v1/bundles/web');
    assert.equal((bundle.states as Record<string, number>).Degraded, 1);
    assert.equal((bundle.deployments as unknown[]).length, N);
  } finally {
    await srv.stop();
  }
});

test('identical-queries-at-the-same-time-serialize-each-cluster-once', async () => {
  const { srv } = await fleetApi();
  // Counts the serializations of cluster views and deployment rows while the queries run.
  const stringify = JSON.stringify;
  let views = 0;
  let rows = 0;
  JSON.stringify = ((value: unknown, ...rest: []) => {
    const v = value as { name?: unknown; labels?: unknown; bundle?: unknown; cluster?: unknown };
    if (v && typeof v === 'object' && 'labels' in v && 'name' in v) views++;
    if (v && typeof v === 'object' && 'bundle' in v && 'cluster' in v) rows++;
    return stringify(value, ...rest);
  }) as typeof JSON.stringify;
  try {
    const base = `http://127.0.0.1:${srv.port}`;
    const bodies = await Promise.all(
      [1, 2, 3, 1, 2, 3].map(async (i) => {
        const path =
          i === 1
            ? '/api/v1/clusters'
            : i === 2
              ? '/api/v1/deployments'
              : '/api/v1/deployments?bundle=app';
        return (await fetch(`${base}${path}`)).text();
      }),
    );
    assert.equal(bodies[0], bodies[3]);
    assert.equal(bodies[1], bodies[4]);
    assert.equal(views, N, 'each cluster view serialized once');
    assert.equal(rows, N * 2, 'each deployment row serialized once');
  } finally {
    JSON.stringify = stringify;
    await srv.stop();
  }
});

function prodSelector() {
  return { empty: false, matches: (labels: Record<string, string>) => labels.env === 'prod' };
}
