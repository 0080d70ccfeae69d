// The managed set in both modes (discovery faked: our own interface).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { KubeObject } from '@flotilla/common';
import type { KubeApi, ResourceInfo } from '../kube/types.js';
import { configMap, makeState } from '../testing/desired.js';
import { managedSet } from './managed.js';

const discovery: Pick<KubeApi, 'resource'> = {
  async resource(apiVersion: string, kind: string): Promise<ResourceInfo> {
    return { group: '', version: 'v1', kind, plural: 'x', namespaced: kind !== 'ClusterRole' };
  },
};
const role: KubeObject = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRole',
  metadata: { name: 'r' },
};
const state = makeState('c', 'r1', [
  { name: 'b', objects: [configMap('team-a', 'x', {}), configMap('team-b', 'y', {}), role] },
]);

it('cluster-wide-mode-watches-each-kind-across-namespaces', async () => {
  const set = await managedSet(discovery, state);
  assert.deepEqual([...set.kinds].sort(), [
    'rbac.authorization.k8s.io/v1|ClusterRole',
    'v1|ConfigMap',
  ]);
  assert.equal(set.objects.size, 3);
});

it('namespaced-mode-watches-per-namespace-and-skips-what-it-refuses', async () => {
  const set = await managedSet(discovery, state, 'default', undefined, ['team-a']);
  assert.deepEqual([...set.kinds], ['v1|ConfigMap|team-a']);
  assert.deepEqual([...set.objects.keys()], ['/ConfigMap/team-a/x']);
  assert.equal(set.skipped.length, 2);
  assert.match(set.skipped.join('\n'), /ClusterRole\/r: refused: cluster-scoped object/);
});
