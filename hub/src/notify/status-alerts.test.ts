// Apply failures alert when they start, also on a cluster that is already Failed (for a
// render failure or another bundle): each bundle the cluster refuses alerts once, a
// cluster staying Failed for the same bundles does not repeat.
import assert from 'node:assert/strict';
import test from 'node:test';
import { silentLogger } from '@flotilla/common';
import { FleetStatus } from '../status/fleet-status.js';
import { renderFailureRecord } from '../status/render-failures.js';
import { appliedEvent } from '../status/testing.js';
import type { Alert } from './notifier.js';
import { alertOnTransitions } from './status-alerts.js';

const REV = '2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const BUNDLES = { access: 'sha256:a', guarded: 'sha256:g', web: 'sha256:w' };
const RBAC =
  'ClusterRole/reports: clusterroles.rbac.authorization.k8s.io "reports" is forbidden: attempting to grant RBAC permissions not currently held';
const WEBHOOK =
  'Deployment/jobs/worker: admission webhook "registries.policy.example.com" denied the request';
const settle = () => new Promise((r) => setImmediate(r));

function fleet(renderFailed: boolean): { status: FleetStatus; sent: Alert[] } {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const sent: Alert[] = [];
  alertOnTransitions(status, { alert: (a) => sent.push(a) });
  status.setFleet([
    {
      name: 'edge',
      labels: {},
      desired: {
        revision: REV,
        digest: 'sha256:d',
        bundles: Object.entries(BUNDLES).map(([name, digest]) => ({ name, digest })),
      },
      renderFailures: renderFailed
        ? [renderFailureRecord('legacy', REV, ['bundles/legacy/chart/Chart.yaml: kubeVersion'], '')]
        : [],
    },
  ]);
  status.connected('edge', 's', {
    cluster: 'edge',
    agentVersion: '',
    appliedDigest: '',
    appliedRevision: '',
    protocolVersion: 1,
  });
  return { status, sent };
}

let clock = Date.now() - 60_000;
function apply(status: FleetStatus, failures: Record<string, string[]>): void {
  const failed = Object.keys(failures).length > 0;
  status.foldEvent(
    failed ? 'apply-failed' : 'applied',
    appliedEvent('edge', REV, 'sha256:d', BUNDLES, new Date((clock += 1000)), {
      ...(failed ? { result: 'failed' as const, kind: 'apply-failed' as const } : {}),
      failures,
    }),
  );
}

test('a-bundle-refused-on-a-cluster-failed-by-a-render-failure-alerts', async () => {
  const { status, sent } = fleet(true);
  apply(status, {});
  await settle();
  assert.equal(status.get('edge')?.state, 'Failed');
  assert.equal(sent.length, 0, 'the render failure has its own alert');
  apply(status, { access: [RBAC] });
  await settle();
  assert.deepEqual(
    sent.map((a) => [a.kind, a.cluster, a.bundle, a.message]),
    [['failed', 'edge', 'access', RBAC]],
  );
  // Still refused at the next retry: no second alert.
  apply(status, { access: [RBAC] });
  await settle();
  assert.equal(sent.length, 1);
});

test('a-second-bundle-failing-on-a-failed-cluster-alerts-for-that-bundle-only', async () => {
  const { status, sent } = fleet(false);
  apply(status, { access: [RBAC] });
  await settle();
  apply(status, { access: [RBAC], guarded: [WEBHOOK] });
  await settle();
  assert.deepEqual(
    sent.map((a) => [a.kind, a.bundle]),
    [
      ['failed', 'access'],
      ['failed', 'guarded'],
    ],
  );
  assert.match(sent[1]?.message ?? '', /admission webhook/);
  // Fixed, then refused again: a new failure, a new alert.
  apply(status, {});
  await settle();
  apply(status, { guarded: [WEBHOOK] });
  await settle();
  assert.deepEqual(
    sent.map((a) => a.bundle),
    ['access', 'guarded', 'guarded'],
  );
});
