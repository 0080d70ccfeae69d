// Reading capabilities from a real kube-apiserver, before and after a CRD is installed.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { requireEnv, startCluster } from '@flotilla/test-env';
import type { TestCluster } from '@flotilla/test-env';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import { waitForCrds } from '../apply/wait.js';
import { boundCapabilities, readServedApis } from './probe.js';

const skip = await requireEnv(['cluster']);

const CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'servicemonitors.monitoring.coreos.com' },
  spec: {
    group: 'monitoring.coreos.com',
    scope: 'Namespaced',
    names: { plural: 'servicemonitors', singular: 'servicemonitor', kind: 'ServiceMonitor' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        },
      },
    ],
  },
};

describe('capabilities of a real kube-apiserver', { skip }, () => {
  let api: TestCluster;
  let kube: KubeClient;
  before(async () => {
    api = await startCluster();
    kube = await KubeClient.create(loadKubeConfig(api.kubeconfigPath));
  });
  after(async () => {
    kube?.close();
    await api?.stop();
  });

  it('reports-a-helm-usable-version-built-in-apis-and-a-crd-once-it-is-served', async () => {
    const read = async () =>
      boundCapabilities(await readServedApis((req) => kube.request(req))).capabilities;
    const first = await read();
    // The test's kube-apiserver is built from source: gitVersion is a placeholder, and
    // major/minor give the version helm can use.
    assert.match(first.kubeVersion, /^v1\.\d+\.\d+/);
    for (const e of [
      'v1',
      'v1/Pod',
      'apps/v1',
      'apps/v1/Deployment',
      'policy/v1',
      'autoscaling/v2',
    ])
      assert.ok(first.apiVersions.includes(e), e);
    assert.ok(!first.apiVersions.includes('monitoring.coreos.com/v1'));

    await kube.apply(CRD);
    assert.equal((await waitForCrds(kube, [CRD])).size, 0);
    let second = await read();
    // Aggregated discovery may trail the CRD's Established condition by a moment.
    for (let i = 0; i < 100 && !second.apiVersions.includes('monitoring.coreos.com/v1'); i++) {
      await new Promise((r) => setTimeout(r, 100));
      second = await read();
    }
    assert.ok(second.apiVersions.includes('monitoring.coreos.com/v1'));
    assert.ok(second.apiVersions.includes('monitoring.coreos.com/v1/ServiceMonitor'));
  });
});
