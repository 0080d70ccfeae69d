// A Kustomize base shared by two bundles, end to end on real parts (kube-apiserver,
// NATS, a Git server, the hub with the real kustomize, an agent with its own RBAC): a
// commit that changes the base reaches both bundles on the cluster; a commit that
// changes one overlay rebuilds only that bundle (the hub's render log says which ran).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const bundle = (name: string): string => `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: ${name}
spec:
  source:
    kustomize: { path: overlay }
  namespace: ${name}
  targets:
    - clusterSelector: {}
`;
const settings = (color: string): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  color: ${color}\n`;
const overlay = (extra = ''): string =>
  `resources:\n  - ../../../apps/base\n  - namespace.yaml\n${extra}`;
const namespace = (name: string): string =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;

const skip = await requireEnv(['cluster', 'nats', 'git']);
let fleet: Fleet | undefined;

before(async () => {
  if (skip) return;
  fleet = await startFleet({
    clusters: ['eu'],
    repoFiles: {
      'clusters/eu.yaml':
        'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: eu\n  labels: {}\n',
      'apps/base/kustomization.yaml': 'resources: [settings.yaml]\n',
      'apps/base/settings.yaml': settings('blue'),
      'bundles/web/bundle.yaml': bundle('web'),
      'bundles/web/overlay/kustomization.yaml': overlay(),
      'bundles/web/overlay/namespace.yaml': namespace('web'),
      'bundles/api/bundle.yaml': bundle('api'),
      'bundles/api/overlay/kustomization.yaml': overlay(),
      'bundles/api/overlay/namespace.yaml': namespace('api'),
    },
  });
});

after(async () => {
  await fleet?.stop();
});

/** The hub's "rendered fleet" log line for a revision: what that render ran. */
async function renderOf(f: Fleet, revision: string): Promise<Record<string, number>> {
  return waitFor(
    async () => {
      const lines = (await readFile(f.hub.logFile, 'utf8')).split('\n');
      for (const line of lines) {
        if (!line.includes('"rendered fleet"') || !line.includes(revision)) continue;
        return JSON.parse(line) as Record<string, number>;
      }
      return false;
    },
    { what: `the hub's render log line for ${revision.slice(0, 12)}`, timeoutMs: 30_000 },
  );
}

test(
  'a-shared-base-change-reaches-both-bundles-and-an-overlay-change-rebuilds-only-its-bundle',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    await f.waitForRevision(f.firstCommit, 120_000);
    const kc = new KubeConfig();
    kc.loadFromFile(f.clusters.get('eu')!.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const data = async (ns: string): Promise<Record<string, string>> =>
      (await core.readNamespacedConfigMap({ name: 'settings', namespace: ns })).data ?? {};
    assert.deepEqual(await data('web'), { color: 'blue' });
    assert.deepEqual(await data('api'), { color: 'blue' });
    assert.equal((await renderOf(f, f.firstCommit)).toolRuns, 2);

    // The shared base changes: both bundles are rebuilt and both reach the cluster.
    const base = await f.repo.commitAndPush('Base: green', {
      'apps/base/settings.yaml': settings('green'),
    });
    await f.waitForRevision(base, 120_000);
    assert.deepEqual(await data('web'), { color: 'green' });
    assert.deepEqual(await data('api'), { color: 'green' });
    const baseRender = await renderOf(f, base);
    assert.equal(baseRender.toolRuns, 2, 'both users of the base are rebuilt');
    assert.equal(baseRender.bundlesPrepared, 2);

    // One overlay changes: only that bundle is rebuilt.
    const one = await f.repo.commitAndPush('web: a label on its objects', {
      'bundles/web/overlay/kustomization.yaml': overlay('commonLabels: { tier: front }\n'),
    });
    await f.waitForRevision(one, 120_000);
    const web = await core.readNamespacedConfigMap({ name: 'settings', namespace: 'web' });
    assert.equal(web.metadata?.labels?.tier, 'front');
    const api = await core.readNamespacedConfigMap({ name: 'settings', namespace: 'api' });
    assert.equal(api.metadata?.labels?.tier, undefined);
    const oneRender = await renderOf(f, one);
    assert.equal(oneRender.toolRuns, 1, 'only web is rebuilt');
    assert.equal(oneRender.bundlesPrepared, 1);

    // A file no build reads changes: nothing is rebuilt.
    const docs = await f.repo.commitAndPush('docs', { 'docs/README.md': '# fleet\n' });
    await f.waitForRevision(docs, 120_000);
    assert.equal((await renderOf(f, docs)).toolRuns, 0);
  },
);
