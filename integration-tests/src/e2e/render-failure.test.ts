// A bundle that fails to render, end to end on real parts (kube-apiservers, NATS, a Git
// server, the hub, an agent per cluster): the good bundle deploys, the broken ones show
// Failed with file:line in `flotilla status`, `get deployments`, `get sources`, the HTTP
// API and an alert at a local webhook receiver; `flotilla wait` exits 1 at once with the
// reason; a fixing commit makes everything Ready. A bundle without substitution holding a
// shell script and a Grafana dashboard full of `${...}` deploys byte for byte unchanged.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { startAlertReceiver } from '../system/alert-receiver.js';
import type { AlertReceiver } from '../system/alert-receiver.js';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const cluster = (name: string, vars: string): string => `apiVersion: flotilla.dev/v1alpha1
kind: Cluster
metadata:
  name: ${name}
  labels: { region: ${name} }
spec:
  vars: { ${vars} }
`;

const bundle = (name: string): string => `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: ${name}
spec:
  source:
    path: manifests
  namespace: ${name}
  substitute: true
  targets:
    - clusterSelector: {}
`;

const namespace = (name: string): string =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;
const configMap = (name: string, value: string): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n`;
// Line 6 is the bad one: a mapping nested in a compact mapping.
const BROKEN_YAML =
  'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  a: b: c\n';

// Ordinary content that looks like substitution: it must reach the cluster as written.
const SCRIPT = [
  '#!/bin/sh',
  'set -eu',
  'echo "backup of ${PGDATABASE:-app} by ${USER:-nobody} in ${HOME}" >&2',
  'for f in "${BACKUP_DIR}"/*.sql; do gzip -9 "$f"; done',
  '',
].join('\n');
const DASHBOARD = JSON.stringify({
  title: 'API latency',
  templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus' }] },
  panels: [{ datasource: '${datasource}', targets: [{ expr: 'rate(http_requests_total[5m])' }] }],
});
const indented = (text: string): string =>
  text
    .split('\n')
    .map((l) => (l === '' ? '' : `    ${l}`))
    .join('\n');
const SCRIPTS_CM = `apiVersion: v1
kind: ConfigMap
metadata:
  name: scripts
data:
  backup.sh: |
${indented(SCRIPT)}
  api-latency.json: |
${indented(DASHBOARD)}
`;

type Alert = {
  kind: string;
  bundle: string;
  revision: string;
  clusters?: string[];
  message: string;
};
type Deployment = { bundle: string; cluster: string; state: string; reason: string };

const skip = await requireEnv(['cluster', 'nats', 'git']);
let fleet: Fleet | undefined;
let receiver: AlertReceiver<Alert> | undefined;

before(async () => {
  if (skip) return;
  receiver = await startAlertReceiver<Alert>();
  const hook = receiver.url;
  fleet = await startFleet({
    clusters: ['eu', 'us'],
    insecure: true,
    hubConfigExtra: [
      'notify:',
      '  webhooks:',
      '    - name: ops',
      `      url: ${hook}`,
      '      format: json',
    ],
    repoFiles: {
      'clusters/eu.yaml': cluster('eu', 'color: blue'),
      'clusters/us.yaml': cluster('us', ''),
      'bundles/good/bundle.yaml': bundle('good'),
      'bundles/good/manifests/namespace.yaml': namespace('good'),
      'bundles/good/manifests/cm.yaml': configMap('settings', 'one'),
      // No `substitute: true`: the default leaves `${...}` alone.
      'bundles/ops/bundle.yaml': bundle('ops').replace('  substitute: true\n', ''),
      'bundles/ops/manifests/namespace.yaml': namespace('ops'),
      'bundles/ops/manifests/scripts.yaml': SCRIPTS_CM,
      'bundles/broken/bundle.yaml': bundle('broken'),
      'bundles/broken/manifests/namespace.yaml': namespace('broken'),
      'bundles/broken/manifests/cm.yaml': BROKEN_YAML,
      // us declares no color: this one fails on us only.
      'bundles/colors/bundle.yaml': bundle('colors'),
      'bundles/colors/manifests/namespace.yaml': namespace('colors'),
      'bundles/colors/manifests/cm.yaml': configMap('settings', '${vars.color}'),
    },
  });
});

after(async () => {
  await fleet?.stop();
  await receiver?.stop();
});

async function deployments(f: Fleet): Promise<Deployment[]> {
  return (
    JSON.parse(await f.cli(['get', 'deployments', '-o', 'json'])) as { deployments: Deployment[] }
  ).deployments;
}

const BROKEN_AT = /^bundles\/broken\/manifests\/cm\.yaml:6: /;
const COLOR_AT =
  /^bundles\/colors\/manifests\/cm\.yaml:6: .*"color" is not defined for cluster "us"/;

test(
  'broken-bundles-are-failed-with-file-and-line-everywhere-while-the-good-one-deploys',
  { skip, timeout: 240_000 },
  async () => {
    const f = fleet!;
    const first = f.firstCommit;
    const short = first.slice(0, 12);
    // The agents apply what did render; the clusters are still not Ready.
    const rows = await waitFor(
      async () => {
        const d = await deployments(f);
        const ready = d.filter((x) => ['good', 'ops'].includes(x.bundle) && x.state === 'Ready');
        return ready.length === 4 ? d : false;
      },
      {
        what: `the good and ops bundles Ready on both clusters (logs in ${f.logDir})`,
        timeoutMs: 90_000,
      },
    );
    const kc = new KubeConfig();
    kc.loadFromFile(f.clusters.get('us')!.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const cm = await core.readNamespacedConfigMap({ name: 'settings', namespace: 'good' });
    assert.equal(cm.data?.value, 'one', 'the good bundle is in the cluster');
    const scripts = await core.readNamespacedConfigMap({ name: 'scripts', namespace: 'ops' });
    assert.equal(scripts.data?.['backup.sh'], SCRIPT, 'the shell script is unchanged');
    assert.equal(
      scripts.data?.['api-latency.json'],
      `${DASHBOARD}\n`,
      'the dashboard is unchanged',
    );

    // get deployments: Failed with the file and line, and the revision that failed.
    const state = (b: string, c: string) => rows.find((x) => x.bundle === b && x.cluster === c);
    for (const c of ['eu', 'us']) {
      assert.equal(state('broken', c)?.state, 'Failed');
      assert.equal(state('broken', c)?.reason.startsWith(`${short} failed to render: `), true);
      assert.match(
        state('broken', c)?.reason.slice(`${short} failed to render: `.length) ?? '',
        BROKEN_AT,
      );
    }
    assert.equal(state('colors', 'eu')?.state, 'Ready');
    assert.equal(state('colors', 'us')?.state, 'Failed');
    assert.match(
      state('colors', 'us')?.reason.replace(/^\w+ failed to render: /, '') ?? '',
      COLOR_AT,
    );
    const wide = await f.cli(['get', 'deployments', '--bundle', 'broken', '-o', 'wide']);
    assert.match(wide, /^broken\s+us\s+Failed\s.*bundles\/broken\/manifests\/cm\.yaml:6: /m);

    // flotilla status: both clusters Failed, and what failed to render under the table.
    const status = await f.cli(['status']);
    assert.match(status, /^eu\s+true\s+Failed\s/m);
    assert.match(status, /^us\s+true\s+Failed\s/m);
    assert.match(
      status,
      /^ {2}bundle broken on eu,us: \w+ failed to render: bundles\/broken\/manifests\/cm\.yaml:6: /m,
    );
    assert.match(
      status,
      /^ {2}bundle colors on us: \w+ failed to render: bundles\/colors\/manifests\/cm\.yaml:6: /m,
    );

    // get sources / describe source: the render errors per bundle with their clusters.
    assert.match(
      await f.cli(['get', 'sources']),
      /^fleet\s+branch main\s+\w+\s+\S+\s+\w+\s+2\s+-$/m,
    );
    const described = await f.cli(['describe', 'source', 'fleet']);
    assert.match(described, /^ {2}broken\s+eu,us\s+bundles\/broken\/manifests\/cm\.yaml:6: /m);
    assert.match(described, /^ {2}colors\s+us\s+bundles\/colors\/manifests\/cm\.yaml:6: /m);

    // The HTTP API, as dashboards read it.
    const us = (await (await fetch(`${f.hubHttpUrl}/api/v1/clusters/us`)).json()) as {
      state: string;
      renderFailures: {
        bundle: string;
        revision: string;
        message: string;
        servingRevision: string;
      }[];
    };
    assert.equal(us.state, 'Failed');
    assert.deepEqual(
      us.renderFailures.map((x) => [x.bundle, x.revision, x.servingRevision]),
      [
        ['broken', first, ''],
        ['colors', first, ''],
      ],
    );
    assert.match(us.renderFailures[0]?.message ?? '', BROKEN_AT);

    // One alert per bundle and revision at the webhook.
    await waitFor(() => receiver!.alerts.filter((a) => a.kind === 'render').length >= 2, {
      what: 'the render alerts',
    });
    const byBundle = Object.fromEntries(
      receiver!.alerts.filter((a) => a.kind === 'render').map((a) => [a.bundle, a]),
    );
    assert.deepEqual(byBundle.broken?.clusters, ['eu', 'us']);
    assert.equal(byBundle.broken?.revision, first);
    assert.match(byBundle.broken?.message ?? '', BROKEN_AT);
    assert.deepEqual(byBundle.colors?.clusters, ['us']);

    // flotilla wait gives up at once (its timeout is far beyond this test's), with the reason.
    await assert.rejects(
      f.cli(['wait', '--for', `revision=${first}`, '--timeout', '10m']),
      (err: Error) => {
        assert.match(err.message, /failed \(1\)/);
        assert.match(err.message, /revision \w+ failed to render; it cannot reach these clusters/);
        assert.match(
          err.message,
          /  us: bundle colors: \w+ failed to render: bundles\/colors\/manifests\/cm\.yaml:6: /,
        );
        assert.match(
          err.message,
          /  eu: bundle broken: \w+ failed to render: bundles\/broken\/manifests\/cm\.yaml:6: /,
        );
        return true;
      },
    );

    // The fix: valid YAML, and the variable declared for us. Everything Ready at it.
    await f.repo.writeFiles({
      'bundles/broken/manifests/cm.yaml': configMap('settings', 'fixed'),
      'clusters/us.yaml': cluster('us', 'color: red'),
    });
    const fix = await f.repo.commitAndPush('Fix the broken bundles');
    await f.waitForRevision(fix, 90_000);
    assert.match(
      await f.cli(['wait', '--for', `revision=${fix}`, '--timeout', '30s']),
      /2 cluster\(s\) Ready at/,
    );
    const after = await deployments(f);
    assert.deepEqual(
      after.map((d) => [d.bundle, d.cluster, d.state]),
      ['broken', 'colors', 'good', 'ops'].flatMap((b) => [
        [b, 'eu', 'Ready'],
        [b, 'us', 'Ready'],
      ]),
    );
    assert.doesNotMatch(await f.cli(['status']), /Failed/);
    assert.match(
      await f.cli(['get', 'sources']),
      /^fleet\s+branch main\s+\w+\s+\S+\s+\w+\s+0\s+-$/m,
    );
    const colors = await kc
      .makeApiClient(CoreV1Api)
      .readNamespacedConfigMap({ name: 'settings', namespace: 'colors' });
    assert.equal(colors.data?.value, 'red');
  },
);
