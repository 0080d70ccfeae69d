import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { requireEnv, startCluster } from './index.js';
import type { TestCluster } from './index.js';

const skip = await requireEnv(['cluster']);
const clusters: TestCluster[] = [];
after(() => Promise.all(clusters.map((c) => c.stop())));

test(
  'three-clusters-start-at-once-and-each-stores-a-configmap',
  { skip, timeout: 180_000 },
  async () => {
    const started = Date.now();
    const results = await Promise.allSettled(
      ['a', 'b', 'c'].map((name) => startCluster({ name: `env-test-${name}` })),
    );
    for (const r of results) if (r.status === 'fulfilled') clusters.push(r.value);
    for (const r of results) if (r.status === 'rejected') throw r.reason;
    console.log(`# 3 clusters (${clusters[0]?.mode}) ready in ${Date.now() - started} ms`);

    if (clusters[0]?.mode !== 'kubeconfig') {
      // With KUBECONFIG every call shares one cluster; otherwise each is its own server.
      assert.equal(
        new Set(clusters.map((c) => c.server)).size,
        3,
        'each cluster has its own API server',
      );
    }
    await Promise.all(
      clusters.map(async (cluster) => {
        const kc = new KubeConfig();
        kc.loadFromFile(cluster.kubeconfigPath);
        const core = kc.makeApiClient(CoreV1Api);
        const namespace = 'default';
        const name = `from-${cluster.name}`;
        await core.createNamespacedConfigMap({
          namespace,
          body: { metadata: { name }, data: { cluster: cluster.name } },
        });
        const got = await core.readNamespacedConfigMap({ namespace, name });
        assert.equal(got.data?.cluster, cluster.name);
      }),
    );
  },
);
