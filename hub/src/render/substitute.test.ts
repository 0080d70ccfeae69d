// Variable substitution is opt-in per bundle (spec.substitute): ordinary content such as
// shell scripts and dashboards that hold ${...} deploys byte for byte unless the bundle
// asks for substitution, and then today's strict rules hold.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FleetRenderer, renderFleet } from './renderer.js';
import { bundleYaml, clusterYaml, repo } from './testing.js';
import type { ToolRunner } from './tools.js';

const SCRIPT = `#!/bin/sh
set -eu
echo "started $(date) in \${HOME} as $1"
for f in "$@"; do echo "\${f%%.*}"; done
echo '\${cluster.name} is not filled here'
`;

const DASHBOARD = JSON.stringify({
  title: 'API latency',
  templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus' }] },
  panels: [{ datasource: '${datasource}', targets: [{ expr: 'rate(x{job="$job"}[5m])' }] }],
});

// A ConfigMap as a user writes it: block scalars for the script, the dashboard quoted.
const CONFIG_MAP = `apiVersion: v1
kind: ConfigMap
metadata:
  name: tools
  annotations: { note: "\${cluster.name} stays literal" }
data:
  run.sh: |
${SCRIPT.split('\n')
  .map((l) => (l === '' ? '' : `    ${l}`))
  .join('\n')}
  dashboard.json: '${DASHBOARD}'
`;

const cluster = clusterYaml('c1', { env: 'prod' }, '  vars: { tier: gold }\n');
const targets = '  targets:\n    - clusterSelector: {}\n';

describe('substitution is opt-in', async () => {
  test('without-spec-substitute-a-shell-script-and-a-dashboard-deploy-unchanged', async () => {
    const out = await renderFleet(
      repo({
        'clusters/c1.yaml': cluster,
        'bundles/tools/bundle.yaml': bundleYaml('tools', `  namespace: ops\n${targets}`),
        'bundles/tools/manifests/cm.yaml': CONFIG_MAP,
      }),
      'r',
    );
    assert.deepEqual(out.errors, []);
    const cm = out.clusters.get('c1')?.bundles[0]?.objects[0];
    assert.deepEqual(cm?.data, { 'run.sh': SCRIPT, 'dashboard.json': DASHBOARD });
    assert.equal(cm?.metadata.annotations?.note, '${cluster.name} stays literal');
  });

  // The fuzzer found fillValue throwing a TypeError on text shaped like the renderer's own
  // placeholder when nothing was compiled; the renderer does not call it then, and this
  // keeps it so.
  test('without-spec-substitute-text-like-an-internal-placeholder-deploys-unchanged', async () => {
    const out = await renderFleet(
      repo({
        'clusters/c1.yaml': cluster,
        'bundles/tools/bundle.yaml': bundleYaml('tools', `  namespace: ops\n${targets}`),
        'bundles/tools/manifests/cm.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: odd\ndata:\n  a: __flotilla_var_0__\n',
      }),
      'r',
    );
    assert.deepEqual(out.errors, []);
    assert.deepEqual(out.clusters.get('c1')?.bundles[0]?.objects[0]?.data, {
      a: '__flotilla_var_0__',
    });
  });

  test('with-spec-substitute-variables-are-filled-and-unknown-forms-stay-errors', async () => {
    const files = {
      'clusters/c1.yaml': cluster,
      'bundles/app/bundle.yaml': bundleYaml(
        'app',
        `  namespace: app\n  substitute: true\n${targets}`,
      ),
      'bundles/app/manifests/cm.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  tier: ${vars.tier}\n  home: $${HOME}\n',
    };
    const ok = await renderFleet(repo(files), 'r');
    assert.deepEqual(ok.errors, []);
    assert.deepEqual(ok.clusters.get('c1')?.bundles[0]?.objects[0]?.data, {
      tier: 'gold',
      home: '${HOME}',
    });
    const bad = await renderFleet(
      repo({
        ...files,
        'bundles/app/manifests/script.yaml': CONFIG_MAP,
      }),
      'r',
    );
    assert.equal(bad.errors.length, 1);
    assert.equal(bad.errors[0]?.file, 'bundles/app/manifests/script.yaml');
    assert.match(bad.errors[0]?.message ?? '', /script\.yaml:\d+: \$\{HOME\}: unknown variable/);
    assert.deepEqual(bad.held.get('c1'), ['app']);
  });

  test('patches-in-bundle-yaml-substitute-without-the-opt-in', async () => {
    const out = await renderFleet(
      repo({
        'clusters/c1.yaml': cluster,
        'bundles/app/bundle.yaml': bundleYaml(
          'app',
          `  namespace: app
  targets:
    - clusterSelector: {}
      patches:
        - target: { kind: ConfigMap, name: x }
          merge: { data: { tier: "\${vars.tier}" } }
`,
        ),
        'bundles/app/manifests/cm.yaml':
          'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  home: ${HOME}\n',
      }),
      'r',
    );
    assert.deepEqual(out.errors, []);
    assert.deepEqual(out.clusters.get('c1')?.bundles[0]?.objects[0]?.data, {
      home: '${HOME}',
      tier: 'gold',
    });
  });

  test('kustomize-output-is-left-unchanged-without-the-opt-in', async () => {
    const tools: ToolRunner = { run: async () => CONFIG_MAP };
    const out = await new FleetRenderer({ tools }).render(
      repo({
        'clusters/c1.yaml': cluster,
        'bundles/k/bundle.yaml': bundleYaml(
          'k',
          `  source: { kustomize: { path: . } }\n  namespace: k\n${targets}`,
        ),
        'bundles/k/kustomization.yaml': 'resources: [cm.yaml]\n',
        'bundles/k/cm.yaml': CONFIG_MAP,
      }),
      'r',
    );
    assert.deepEqual(out.errors, []);
    const cm = out.clusters.get('c1')?.bundles[0]?.objects[0];
    assert.deepEqual(cm?.data, { 'run.sh': SCRIPT, 'dashboard.json': DASHBOARD });
  });

  test('spec-substitute-must-be-true-or-false', async () => {
    const out = await renderFleet(
      repo({
        'clusters/c1.yaml': cluster,
        'bundles/app/bundle.yaml': bundleYaml('app', `  substitute: yes please\n${targets}`),
        'bundles/app/manifests/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n',
      }),
      'r',
    );
    assert.match(
      out.errors[0]?.message ?? '',
      /bundle\.yaml:6: spec\.substitute must be true or false/,
    );
  });
});
