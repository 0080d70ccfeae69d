// applySet against a fake of our own KubeApi: staging, waiting for CRDs, no write when unchanged.
import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { KubeObject } from '@flotilla/common';
import { KubeApiError, UnknownKindError } from '../kube/errors.js';
import type { ApplyRequestOptions, KubeApi, ObjectRef, ResourceInfo } from '../kube/types.js';
import { applySet } from './apply.js';

const key = (r: { kind: string; namespace?: string; name: string }): string =>
  `${r.kind}/${r.namespace ?? ''}/${r.name}`;

/** An in-memory cluster: kinds become known when their CRD is stored. */
class FakeKube implements KubeApi {
  objects = new Map<string, KubeObject>();
  writes: string[] = [];
  kinds = new Map<string, boolean>([
    ['ConfigMap', true],
    ['Namespace', false],
    ['CustomResourceDefinition', false],
    ['ClusterRole', false],
  ]);
  async resource(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const namespaced = this.kinds.get(kind);
    if (namespaced === undefined) throw new UnknownKindError(apiVersion, kind);
    return { group: '', version: 'v1', kind, plural: kind.toLowerCase() + 's', namespaced };
  }
  async get(ref: ObjectRef): Promise<KubeObject | undefined> {
    return this.objects.get(key(ref));
  }
  async apply(obj: KubeObject, opts: ApplyRequestOptions = {}): Promise<KubeObject> {
    if ('bogus' in obj)
      throw new KubeApiError(
        'PATCH',
        '/x',
        400,
        'BadRequest',
        '.bogus: field not declared in schema',
      );
    const stored = { ...obj, metadata: { ...obj.metadata } };
    if (!opts.dryRun) {
      this.writes.push(key({ ...obj.metadata, kind: obj.kind }));
      this.objects.set(key({ ...obj.metadata, kind: obj.kind }), {
        ...stored,
        status: { conditions: [{ type: 'Established', status: 'True' }] },
      });
      if (obj.kind === 'CustomResourceDefinition')
        this.kinds.set((obj.spec as { names: { kind: string } }).names.kind, true);
    }
    return stored;
  }
  async delete(): Promise<boolean> {
    return true;
  }
  async list(): Promise<KubeObject[]> {
    return [];
  }
}

const crd: KubeObject = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'widgets.example.com' },
  spec: {
    group: 'example.com',
    names: { kind: 'Widget' },
    versions: [{ name: 'v1', served: true }],
  },
};

it('apply-set-stages-objects-defaults-namespaces-and-labels-them', async () => {
  const kube = new FakeKube();
  const objs: KubeObject[] = [
    { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' } },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'r', namespace: 'ignored' },
    },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'web' } },
    crd,
  ];
  const result = await applySet(kube, objs, {
    bundle: 'web',
    defaultNamespace: 'web',
    crdTimeoutMs: 1_000,
  });
  assert.deepEqual(kube.writes, [
    'CustomResourceDefinition//widgets.example.com',
    'Namespace//web',
    'ClusterRole//r',
    'Widget/web/w',
    'ConfigMap/web/c',
  ]);
  assert.ok(result.every((e) => e.action === 'created'));
  assert.equal(
    kube.objects.get('ConfigMap/web/c')?.metadata.labels?.['flotilla.dev/bundle'],
    'web',
  );
});

it('a-second-apply-of-the-same-objects-writes-nothing', async () => {
  const kube = new FakeKube();
  const objs: KubeObject[] = [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'c', namespace: 'a' },
      data: { x: '1' },
    },
  ];
  await applySet(kube, objs, { bundle: 'b' });
  kube.writes = [];
  const again = await applySet(kube, objs, { bundle: 'b' });
  assert.deepEqual([again[0]?.action, kube.writes], ['unchanged', []]);
});

it('one-failing-object-does-not-stop-the-others', async () => {
  const kube = new FakeKube();
  const objs = [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'bad', namespace: 'a' }, bogus: 1 },
    { apiVersion: 'nope/v1', kind: 'Unknown', metadata: { name: 'u', namespace: 'a' } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'good', namespace: 'a' } },
  ] as KubeObject[];
  const result = await applySet(kube, objs, {});
  const by = new Map(result.map((e) => [e.ref.name, e]));
  assert.equal(by.get('good')?.action, 'created');
  assert.match(by.get('bad')?.reason ?? '', /field not declared/);
  assert.match(by.get('u')?.reason ?? '', /no matches for kind "Unknown"/);
});

it('namespaced-mode-refuses-cluster-scoped-and-foreign-namespace-objects-without-a-request', async () => {
  const kube = new FakeKube();
  const objs: KubeObject[] = [
    crd,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'ClusterRole',
      metadata: { name: 'everything' },
    },
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-c' } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'mine' } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'theirs', namespace: 'team-c' } },
  ];
  const result = await applySet(kube, objs, {
    bundle: 'b',
    defaultNamespace: 'team-a',
    namespaces: ['team-a', 'team-b'],
  });
  assert.deepEqual(kube.writes, ['ConfigMap/team-a/mine']);
  const by = new Map(result.map((e) => [e.ref.name, e]));
  assert.equal(by.get('mine')?.action, 'created');
  for (const name of ['widgets.example.com', 'everything', 'team-c'])
    assert.match(
      by.get(name)?.reason ?? '',
      /^refused: cluster-scoped object, and this agent runs in namespaced mode \(it manages only namespace\(s\) team-a, team-b\)/,
      name,
    );
  assert.equal(by.get('theirs')?.action, 'failed');
  assert.match(by.get('theirs')?.reason ?? '', /namespace "team-c" is not one this agent manages/);
});
