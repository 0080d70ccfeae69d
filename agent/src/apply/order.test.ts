import assert from 'node:assert/strict';
import { it } from 'node:test';
import { APPLY_ORDER, DELETE_ORDER, groupByStage, stageOf } from './order.js';

const obj = (apiVersion: string, kind: string, namespaced: boolean) => ({
  o: { apiVersion, kind },
  namespaced,
});

it('crds-then-namespaces-then-cluster-scoped-then-namespaced', () => {
  const items = [
    obj('apps/v1', 'Deployment', true),
    obj('rbac.authorization.k8s.io/v1', 'ClusterRole', false),
    obj('v1', 'Namespace', false),
    obj('apiextensions.k8s.io/v1', 'CustomResourceDefinition', false),
    obj('example.com/v1', 'Widget', true),
  ];
  const groups = groupByStage(items, (i) => stageOf(i.o, i.namespaced));
  assert.deepEqual(
    groups.map((g) => [g.stage, g.items.map((i) => i.o.kind)]),
    [
      ['crds', ['CustomResourceDefinition']],
      ['namespaces', ['Namespace']],
      ['cluster', ['ClusterRole']],
      ['namespaced', ['Deployment', 'Widget']],
    ],
  );
  assert.deepEqual([...DELETE_ORDER], [...APPLY_ORDER].reverse());
});

it('a-kind-named-like-a-crd-in-another-group-is-not-a-crd', () => {
  assert.equal(
    stageOf({ apiVersion: 'example.com/v1', kind: 'CustomResourceDefinition' }, false),
    'cluster',
  );
  assert.equal(stageOf({ apiVersion: 'example.com/v1', kind: 'Namespace' }, true), 'namespaced');
});
