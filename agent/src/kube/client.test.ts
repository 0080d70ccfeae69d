// Integration tests of the raw-JSON client against a real kube-apiserver.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { KubeApiError, UnknownKindError } from './errors.js';
import { KubeClient, loadKubeConfig } from './client.js';
import { requireEnv, startCluster } from '@flotilla/test-env';
import type { TestCluster } from '@flotilla/test-env';

const skip = await requireEnv(['cluster']);

describe('kube client (real kube-apiserver)', { skip }, () => {
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

  it('discovery-resolves-core-and-group-kinds', async () => {
    assert.deepEqual(await kube.resource('v1', 'ConfigMap'), {
      group: '',
      version: 'v1',
      kind: 'ConfigMap',
      plural: 'configmaps',
      namespaced: true,
    });
    const crd = await kube.resource('apiextensions.k8s.io/v1', 'CustomResourceDefinition');
    assert.equal(crd.namespaced, false);
    await assert.rejects(kube.resource('example.com/v1', 'Widget'), UnknownKindError);
  });

  it('apply-get-list-delete-a-configmap', async () => {
    const cm = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c1', namespace: 'default', labels: { t: 'x' } },
      data: { a: '1' },
    };
    const dry = await kube.apply(cm, { dryRun: true });
    assert.equal(dry.metadata.name, 'c1');
    assert.equal(
      await kube.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name: 'c1' }),
      undefined,
    );
    await kube.apply(cm);
    const live = await kube.get({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: 'default',
      name: 'c1',
    });
    assert.deepEqual(live?.data, { a: '1' });
    const listed = await kube.list('v1', 'ConfigMap', {
      namespace: 'default',
      labelSelector: 't=x',
    });
    assert.deepEqual(
      listed.map((o) => [o.kind, o.metadata.name]),
      [['ConfigMap', 'c1']],
    );
    assert.equal(
      await kube.delete({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name: 'c1' }),
      true,
    );
    assert.equal(
      await kube.delete({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name: 'c1' }),
      false,
    );
  });

  it('strict-validation-rejects-unknown-fields-with-the-server-message', async () => {
    const bad = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c2', namespace: 'default' },
      dta: { a: '1' },
    };
    const err = await kube.apply(bad).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof KubeApiError);
    // 500 is kube-apiserver's (wrong) status for this; what matters is the class and message.
    assert.match(err.message, /\.dta: field not declared in schema/);
    assert.equal(err.retryable, false);
    assert.equal(err.code, 'VALIDATION_FAILED');
  });
});
