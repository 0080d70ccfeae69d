// Kernel limits on the real helm program: a chart whose templates allocate or loop
// without end is stopped at its memory or CPU-time limit, and is an error of its bundle
// that names the chart and the setting; the other bundles render.
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { describe, test } from 'node:test';
import { MapRepoTree, renderFleet } from '@flotilla/hub';
import type { RenderResult } from '@flotilla/hub';
import { binaryPaths, requirePrerequisite } from '@flotilla/test-env';

const bins = binaryPaths();
const skip = await requirePrerequisite(
  'helm',
  () => {
    accessSync(bins.helm, constants.X_OK);
    return true;
  },
  'run integration-tests/tools/prereqs.sh (builds helm), or set FLOTILLA_HELM',
);

const CLUSTER =
  'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: c1\n  labels: { env: dev }\n';
const bundle = (name: string, source: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: ${name}\nspec:\n  source: ${source}\n  namespace: ${name}\n  targets:\n    - clusterSelector: {}\n`;

/** A fleet with one well-behaved bundle and one chart whose only template is `template`. */
function fleet(template: string): MapRepoTree {
  return MapRepoTree.fromStrings({
    'clusters/c1.yaml': CLUSTER,
    'bundles/hog/bundle.yaml': bundle('hog', '{ helm: { chart: chart } }'),
    'bundles/hog/chart/Chart.yaml': 'apiVersion: v2\nname: hog\nversion: 0.1.0\n',
    'bundles/hog/chart/templates/cm.yaml': template,
    'bundles/ok/bundle.yaml': bundle('ok', '{ path: manifests }'),
    'bundles/ok/manifests/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ok\n',
  });
}

function onlyHogFailed(out: RenderResult): string {
  assert.equal(out.errors.length, 1, out.errors.map((e) => e.message).join('\n'));
  const e = out.errors[0];
  assert.equal(e?.bundle, 'hog');
  assert.equal(e?.file, 'bundles/hog/chart/Chart.yaml');
  assert.deepEqual(
    out.clusters.get('c1')?.bundles.map((b) => b.name),
    ['ok'],
  );
  return e?.message ?? '';
}

describe('limits on the helm program', { skip }, () => {
  test('a-template-that-allocates-without-end-stops-at-the-memory-limit-and-other-bundles-render', async () => {
    // Doubling a string 22 times: 64 MiB, about 300 MiB resident with its copies.
    const template = `{{- $s := "xxxxxxxxxxxxxxxx" }}
{{- range until 22 }}{{ $s = printf "%s%s" $s $s }}{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: hog
data:
  size: "{{ len $s }}"
`;
    const out = await renderFleet(fleet(template), 'r', {
      helmPath: bins.helm,
      toolMaxMemoryBytes: 160 * 1024 * 1024,
    });
    assert.match(
      onlyHogFailed(out),
      /^bundles\/hog\/chart\/Chart.yaml: helm ran out of memory: one run may use 160 MiB \(render\.toolMaxMemoryBytes\)$/,
    );
  });

  test('a-template-that-loops-without-end-stops-at-the-cpu-time-limit-and-other-bundles-render', async () => {
    const template = `{{- $n := 0 }}
{{- range until 100000 }}{{ range until 100000 }}{{ $n = add1 $n }}{{ end }}{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: hog
data:
  n: "{{ $n }}"
`;
    const out = await renderFleet(fleet(template), 'r', {
      helmPath: bins.helm,
      toolMaxCpuMs: 1_000,
      toolTimeoutMs: 60_000,
    });
    assert.match(
      onlyHogFailed(out),
      /^bundles\/hog\/chart\/Chart.yaml: helm was killed: it used its 1 s of CPU time \(render\.toolMaxCpuTime\)/,
    );
  });
});
