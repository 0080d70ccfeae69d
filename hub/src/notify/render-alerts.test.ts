// Render failures become one alert per bundle and revision, naming the clusters; a cluster
// Failed only because of them raises no "apply failed" alert as well.
import assert from 'node:assert/strict';
import test from 'node:test';
import { silentLogger } from '@flotilla/common';
import { compileStatusConfig } from '../status/status-config.js';
import { FleetStatus } from '../status/fleet-status.js';
import { renderFailureRecord } from '../status/render-failures.js';
import { alertText } from './notifier.js';
import type { Alert } from './notifier.js';
import { renderFailureAlerts } from './render-alerts.js';
import { alertOnTransitions } from './status-alerts.js';

const NEW = '2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
const OLD = '1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
const MSG = 'bundles/web/manifests/cm.yaml:5: YAML: bad indentation';
const NOW = () => Date.parse('2026-11-26T12:00:00Z');

test('one-render-alert-per-bundle-and-revision-naming-its-clusters', () => {
  const web = renderFailureRecord('web', NEW, [MSG], OLD);
  const file = renderFailureRecord('', NEW, ['clusters/lab.yaml:2: bad'], OLD);
  const alerts = renderFailureAlerts(
    [
      { cluster: 'edge-eu', failure: web },
      { cluster: 'edge-us', failure: web },
      { cluster: 'lab', failure: file },
    ],
    NOW,
  );
  assert.deepEqual(
    alerts.map((a) => [a.kind, a.bundle, a.cluster, a.clusters, a.clusterCount]),
    [
      ['render', 'web', '', ['edge-eu', 'edge-us'], 2],
      ['render', '', 'lab', ['lab'], 1],
    ],
  );
  assert.equal(
    alertText(alerts[0] as Alert),
    `:x: Bundle web failed to render at 2222222bbbbb for edge-eu, edge-us (still serving 1111111aaaaa)\n${MSG}`,
  );
  assert.equal(
    alertText(alerts[1] as Alert),
    ':x: The desired state of cluster lab failed to render at 2222222bbbbb (still serving 1111111aaaaa)\nclusters/lab.yaml:2: bad',
  );
});

test('a-cluster-failed-by-a-render-failure-raises-no-apply-failed-alert', async () => {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const sent: Alert[] = [];
  alertOnTransitions(status, { alert: (a) => sent.push(a) });
  status.setFleet([
    {
      name: 'edge-1',
      labels: {},
      desired: { revision: NEW, digest: 'sha256:d', bundles: [] },
      renderFailures: [renderFailureRecord('web', NEW, [MSG], '')],
    },
  ]);
  status.connected('edge-1', 's', {
    cluster: 'edge-1',
    agentVersion: '',
    appliedDigest: 'sha256:d',
    appliedRevision: NEW,
    protocolVersion: 1,
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(status.get('edge-1')?.state, 'Failed');
  assert.deepEqual(sent, []);
});

test('webhooks-may-subscribe-to-render-alerts', () => {
  const cfg = compileStatusConfig(
    { notify: { webhooks: [{ name: 'ops', url: 'https://x.example/h', events: ['render'] }] } },
    'hub.yaml',
  );
  assert.deepEqual(cfg.notify.webhooks[0]?.events, ['render']);
  const all = compileStatusConfig(
    { notify: { webhooks: [{ name: 'ops', url: 'https://x.example/h' }] } },
    'hub.yaml',
  );
  assert.ok(all.notify.webhooks[0]?.events.includes('render'), 'by default');
});
