// Render failures in fleet status: the deployment is Failed with the reason and the
// revision still served, the cluster is not Ready, a restored record shows it at once,
// and only failures no record held before are reported (for alerts).
import assert from 'node:assert/strict';
import test from 'node:test';
import { silentLogger } from '@flotilla/common';
import { toClusterMessage, toDeploymentMessage } from '../api/grpc-fleet.js';
import { FleetStatus } from './fleet-status.js';
import type { FleetEntry } from './fleet-status.js';
import { renderFailureRecord } from './render-failures.js';
import { appliedEvent } from './testing.js';

const OLD = '1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const NEW = '2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const BROKEN = 'bundles/web/manifests/cm.yaml:5: YAML: unexpected end of the stream';
const at = (s: number) => new Date(Date.now() - 60_000 + s * 1000);

function entry(name: string, revision: string, failures: FleetEntry['renderFailures'] = []) {
  return {
    name,
    labels: { env: 'prod' },
    desired: {
      revision,
      digest: `sha256:${revision.slice(0, 4)}`,
      bundles: [{ name: 'app', digest: `sha256:app-${revision.slice(0, 4)}` }],
    },
    renderFailures: failures,
  };
}

// edge-1 connected and applied what it was sent at `revision`.
function running(status: FleetStatus, revision: string): void {
  status.connected('edge-1', 's1', {
    cluster: 'edge-1',
    agentVersion: '1',
    appliedDigest: '',
    appliedRevision: '',
    protocolVersion: 1,
  });
  const digest = `sha256:${revision.slice(0, 4)}`;
  const bundles = { app: `sha256:app-${revision.slice(0, 4)}` };
  status.foldEvent('applied', appliedEvent('edge-1', revision, digest, bundles, at(1)));
}

function newStatus(): FleetStatus {
  return new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
}

test('a-bundle-that-failed-to-render-is-a-failed-deployment-and-the-cluster-is-not-ready', () => {
  const status = newStatus();
  // web failed at its first render: nothing of it is served, app applied at NEW.
  const web = renderFailureRecord('web', NEW, [BROKEN], '');
  status.setFleet([entry('edge-1', NEW, [web])]);
  running(status, NEW);
  const c = status.get('edge-1');
  assert.equal(c?.state, 'Failed');
  assert.equal(c?.message, `bundle web: 2222222bbbbb failed to render: ${BROKEN}`);
  assert.deepEqual(c?.renderFailures, [web]);

  const deployments = status.deployments({ cluster: 'edge-1' });
  assert.deepEqual(
    deployments.map((d) => [d.bundle, d.state, d.reason]),
    [
      ['app', 'Ready', ''],
      ['web', 'Failed', `2222222bbbbb failed to render: ${BROKEN}`],
    ],
  );
  assert.deepEqual(status.deployments({ bundle: 'web' }).length, 1, 'get deployments --bundle web');
  assert.equal(status.bundleSummaries().find((b) => b.name === 'web')?.states.Failed, 1);

  // The same facts over gRPC.
  assert.deepEqual(toClusterMessage(c!).renderFailures, [web]);
  assert.deepEqual(toDeploymentMessage(deployments[1]!).renderFailure, web);
  assert.equal(toDeploymentMessage(deployments[0]!).renderFailure, undefined);
});

test('the-clusters-other-bundles-keep-their-own-state', () => {
  const status = newStatus();
  status.setFleet([entry('edge-1', NEW, [renderFailureRecord('web', NEW, [BROKEN], '')])]);
  status.connected('edge-1', 's1', {
    cluster: 'edge-1',
    agentVersion: '1',
    appliedDigest: '',
    appliedRevision: '',
    protocolVersion: 1,
  });
  assert.equal(status.get('edge-1')?.state, 'Failed');
  // Not "apply failed": app is being applied, only web failed (to render).
  assert.deepEqual(
    status.describe('edge-1')?.deployments.map((d) => [d.bundle, d.state]),
    [
      ['app', 'Progressing'],
      ['web', 'Failed'],
    ],
  );
  assert.deepEqual(status.bundleSummaries().find((b) => b.name === 'app')?.states.Progressing, 1);
});

test('a-failed-bundle-with-an-older-rendering-says-which-revision-is-served', () => {
  const status = newStatus();
  status.setFleet([entry('edge-1', OLD)]);
  running(status, OLD);
  assert.equal(status.get('edge-1')?.state, 'Ready');
  const app = renderFailureRecord('app', NEW, [BROKEN], OLD);
  status.setFleet([{ ...entry('edge-1', OLD), renderFailures: [app] }]);
  const [d] = status.deployments({ cluster: 'edge-1' });
  assert.equal(d?.state, 'Failed');
  assert.equal(d?.reason, `serving 1111111aaaaa; 2222222bbbbb failed to render: ${BROKEN}`);
  assert.equal(status.get('edge-1')?.state, 'Failed');

  // A fixing commit: Ready again, nothing left of the failure.
  status.setFleet([entry('edge-1', OLD)]);
  assert.equal(status.get('edge-1')?.state, 'Ready');
  assert.deepEqual(status.get('edge-1')?.renderFailures, []);
});

test('a-whole-cluster-failure-fails-every-deployment-of-it', () => {
  const status = newStatus();
  status.setFleet([entry('edge-1', OLD)]);
  running(status, OLD);
  const file = renderFailureRecord('', NEW, ['clusters/edge-1.yaml:3: bad'], OLD);
  status.setFleet([entry('edge-1', OLD, [file])]);
  assert.equal(status.get('edge-1')?.state, 'Failed');
  assert.match(status.get('edge-1')?.message ?? '', /^serving 1111111aaaaa; 2222222bbbbb failed/);
  assert.deepEqual(
    status.deployments({ cluster: 'edge-1' }).map((d) => d.state),
    ['Failed'],
  );
});

test('an-offline-cluster-stays-offline-but-its-failed-bundle-is-failed', () => {
  let now = Date.now();
  const status = new FleetStatus({ offlineAfterMs: 1_000, logger: silentLogger(), now: () => now });
  status.setFleet([entry('edge-1', NEW, [renderFailureRecord('web', NEW, [BROKEN], '')])]);
  running(status, NEW);
  status.disconnected('edge-1', 's1', 'gone');
  now += 5_000;
  assert.equal(status.get('edge-1')?.state, 'Offline');
  const web = status.deployments({ cluster: 'edge-1', bundle: 'web' })[0];
  assert.equal(web?.state, 'Failed');
});

test('set-fleet-reports-each-failure-once-per-bundle-and-revision', () => {
  const status = newStatus();
  const web = (rev: string) => renderFailureRecord('web', rev, [BROKEN], '');
  const first = status.setFleet([
    entry('edge-1', NEW, [web(NEW)]),
    entry('edge-2', NEW, [web(NEW)]),
  ]);
  assert.deepEqual(
    first.map((f) => [f.cluster, f.failure.bundle, f.failure.revision]),
    [
      ['edge-1', 'web', NEW],
      ['edge-2', 'web', NEW],
    ],
  );
  // The same revision rendered again (a poll, a webhook): nothing new.
  assert.deepEqual(status.setFleet([entry('edge-1', NEW, [web(NEW)])]), []);
  const third = '3333333ccccccccccccccccccccccccccccccccc';
  assert.equal(status.setFleet([entry('edge-1', third, [web(third)])]).length, 1);
});

test('a-restored-record-shows-the-failure-at-once-and-is-not-reported-again', () => {
  const before = newStatus();
  before.setFleet([entry('edge-1', NEW, [renderFailureRecord('web', NEW, [BROKEN], '')])]);
  // What the KV bucket holds is the record as JSON.
  const saved = JSON.parse(JSON.stringify(before.takeDirty()));
  const after = newStatus();
  after.restore(saved);
  running(after, NEW);
  assert.equal(after.get('edge-1')?.state, 'Failed');
  assert.deepEqual(
    after.setFleet([entry('edge-1', NEW, [renderFailureRecord('web', NEW, [BROKEN], '')])]),
    [],
  );
});

test('a-long-tool-message-is-bounded', () => {
  const f = renderFailureRecord('h', NEW, ['x'.repeat(10_000), 'b', 'c', 'd'], '');
  assert.ok(f.message.length <= 2_000);
  const g = renderFailureRecord('h', NEW, ['a', 'b', 'c', 'd', 'e'], '');
  assert.equal(g.message, 'a; b; c (and 2 more)');
});

test('an-apply-failure-beside-a-render-failure-is-in-the-clusters-message-too', () => {
  const status = newStatus();
  const web = renderFailureRecord('web', NEW, [BROKEN], '');
  status.setFleet([entry('edge-1', NEW, [web])]);
  running(status, OLD);
  // The agent could not apply app at NEW: the API server refused one of its objects.
  const refused =
    'ClusterRole/reports: clusterroles.rbac.authorization.k8s.io "reports" is forbidden: attempting to grant RBAC permissions not currently held';
  status.foldEvent(
    'apply-failed',
    appliedEvent('edge-1', NEW, 'sha256:2222', { app: 'sha256:app-2222' }, at(2), {
      result: 'failed',
      failures: { app: [refused] },
      kind: 'apply-failed',
    }),
  );
  const c = status.get('edge-1');
  assert.equal(c?.state, 'Failed');
  assert.equal(
    c?.message,
    `bundle web: 2222222bbbbb failed to render: ${BROKEN}; and apply failed: ${refused}`,
  );
  assert.equal(c?.applyFailure, refused);
  // Once app applies, only the render failure is left.
  status.foldEvent(
    'applied',
    appliedEvent('edge-1', NEW, 'sha256:2222', { app: 'sha256:app-2222' }, at(3)),
  );
  assert.equal(
    status.get('edge-1')?.message,
    `bundle web: 2222222bbbbb failed to render: ${BROKEN}`,
  );
  assert.equal(status.get('edge-1')?.applyFailure, '');
});
