// The example fleet's Kustomize and Helm bundles, rendered by the real programs, apply
// cleanly with the agent's apply engine on a real (bare) kube-apiserver: what the demo
// promises for any bundle added to deploy/examples/fleet.
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { KubeClient, applySet, failureMessages, loadKubeConfig } from '@flotilla/agent';
import { readDirectoryTree, renderFleet } from '@flotilla/hub';
import { binaryPaths, requireEnv, requirePrerequisite, startCluster } from '@flotilla/test-env';

const EXAMPLE = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'deploy',
  'examples',
  'fleet',
);
const bins = binaryPaths();
const skip =
  (await requireEnv(['cluster'])) ??
  (await requirePrerequisite(
    'kustomize and helm',
    () => {
      accessSync(bins.kustomize, constants.X_OK);
      accessSync(bins.helm, constants.X_OK);
      return true;
    },
    'run integration-tests/tools/prereqs.sh (builds kustomize and helm), or set FLOTILLA_KUSTOMIZE / FLOTILLA_HELM',
  ));

test(
  'example-kustomize-and-helm-bundles-apply-on-a-bare-kube-apiserver',
  { skip, timeout: 60_000 },
  async () => {
    const result = await renderFleet(await readDirectoryTree(EXAMPLE), 'example', {
      kustomizePath: bins.kustomize,
      helmPath: bins.helm,
    });
    assert.deepEqual(result.errors, []);
    const state = result.clusters.get('lab-1');
    assert.deepEqual(
      state?.bundles.map((b) => b.name),
      ['hello', 'platform', 'settings'],
    );
    const cluster = await startCluster({ name: 'lab-1' });
    const kube = await KubeClient.create(loadKubeConfig(cluster.kubeconfigPath));
    try {
      for (const b of state?.bundles ?? []) {
        const entries = await applySet(kube, b.objects, { bundle: b.name, force: true });
        assert.deepEqual(failureMessages(entries), [], `bundle ${b.name}`);
        assert.equal(entries.length, b.objects.length);
      }
    } finally {
      kube.close();
      await cluster.stop();
    }
  },
);
