// The mass-prune guard on inventories and desired states (discovery faked: our own interface).
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { bundleDigest, desiredStateDigest } from '@flotilla/common';
import type { DesiredState, KubeObject, PrunePolicy } from '@flotilla/common';
import type { Inventory } from '../inventory/inventory.js';
import type { KubeApi, ObjectRef, ResourceInfo } from '../kube/types.js';
import { configMap } from '../testing/desired.js';
import { massPruneHold } from './prune-guard.js';

const discovery: Pick<KubeApi, 'resource'> = {
  async resource(apiVersion: string, kind: string): Promise<ResourceInfo> {
    const namespaced = kind !== 'Namespace' && kind !== 'ClusterRole';
    return { group: '', version: 'v1', kind, plural: `${kind.toLowerCase()}s`, namespaced };
  },
};

const cms = (ns: string, prefix: string, n: number): KubeObject[] =>
  Array.from({ length: n }, (_, i) => configMap(ns, `${prefix}-${i}`, {}));
const refs = (objs: KubeObject[]): ObjectRef[] =>
  objs.map((o) => ({
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: o.metadata.name,
    namespace: o.metadata.namespace,
  }));

function state(
  bundles: { name: string; objects: KubeObject[]; allowMassPrune?: boolean }[],
  prune?: PrunePolicy,
  held: string[] = [],
): DesiredState {
  const built = bundles.map((b) => {
    const body = {
      name: b.name,
      drift: { mode: 'enforce' as const, ignore: [] },
      forceConflicts: true,
      ...(b.allowMassPrune ? { allowMassPrune: true } : {}),
      objects: b.objects,
    };
    return { ...body, digest: bundleDigest(body) };
  });
  return {
    cluster: 'edge-1',
    revision: '0123456789abcdef',
    digest: desiredStateDigest('edge-1', built, held, prune),
    bundles: built,
    ...(held.length > 0 ? { held } : {}),
    ...(prune ? { prune } : {}),
  };
}

function inventories(by: Record<string, KubeObject[]>, s?: DesiredState): Map<string, Inventory> {
  return new Map(
    Object.entries(by).map(([bundle, objs]) => [
      bundle,
      {
        bundle,
        digest: s?.bundles.find((b) => b.name === bundle)?.digest ?? 'old',
        revision: 'r0',
        entries: refs(objs),
      },
    ]),
  );
}

const web = cms('app', 'web', 6);
const api = cms('app', 'api', 4);

it('deleting-up-to-the-share-applies-and-more-is-held-with-counts-and-objects-named', async () => {
  const inv = inventories({ web, api });
  const half = state([
    { name: 'web', objects: web.slice(0, 1) },
    { name: 'api', objects: api },
  ]);
  assert.equal(
    await massPruneHold(discovery, inv, half),
    undefined,
    '5 of 10 is not more than 50 %',
  );
  const most = state([
    { name: 'web', objects: [] as KubeObject[] },
    { name: 'api', objects: api.slice(0, 1) },
  ]);
  const hold = await massPruneHold(discovery, inv, most);
  assert.ok(hold);
  assert.equal(hold.deleting, 9);
  assert.equal(hold.managed, 10);
  assert.match(
    hold.message,
    /^mass prune held at revision 0123456789ab: bundle web has no objects at this revision but manages 6 .*; it would delete 9 of the 10 objects Flotilla manages on this cluster \(90 %; prune\.maxShare allows 50 %\)/,
  );
  assert.match(
    hold.message,
    /bundle api: 3 of its 4 \(ConfigMap\/app\/api-1, ConfigMap\/app\/api-2, ConfigMap\/app\/api-3\)/,
  );
  assert.match(hold.message, /spec\.allowMassPrune: true .* clusters\/edge-1\.yaml/);
  const w = hold.bundles.find((b) => b.name === 'web');
  assert.equal(w?.failed, 6);
  assert.match(
    w?.failures[0] ?? '',
    /^mass prune held: would delete 6 of its 6 objects \(ConfigMap\/app\/web-0, .* and 3 more\); to allow it set spec\.allowMassPrune: true in bundles\/web\/bundle\.yaml/,
  );
});

it('a-bundle-emptied-while-it-has-objects-is-held-whatever-the-share', async () => {
  const big = cms('app', 'big', 20);
  const inv = inventories({ web: web.slice(0, 1), big });
  const hold = await massPruneHold(
    discovery,
    inv,
    state([
      { name: 'web', objects: [] },
      { name: 'big', objects: big },
    ]),
  );
  assert.ok(hold, '1 of 21 objects, but a whole bundle emptied');
  assert.match(hold.message, /bundle web has no objects at this revision but manages 1/);
  const b = hold.bundles.find((x) => x.name === 'big');
  assert.equal(b?.failed, 20, 'a changed bundle that is not the cause: all its objects held back');
  assert.match(
    b?.failures[0] ?? '',
    /^not applied: this cluster's desired state at revision 0123456789ab is held/,
  );
});

it('a-bundle-already-at-its-new-content-reports-unchanged-in-a-hold', async () => {
  const s = state([
    { name: 'web', objects: [] },
    { name: 'api', objects: api },
  ]);
  const hold = await massPruneHold(discovery, inventories({ web, api }, s), s);
  const a = hold?.bundles.find((b) => b.name === 'api');
  assert.deepEqual([a?.failed, a?.unchanged, a?.failures], [0, 4, []]);
});

it('removed-bundles-count-toward-the-share-and-held-ones-do-not', async () => {
  const inv = inventories({ web, api });
  const hold = await massPruneHold(discovery, inv, state([{ name: 'api', objects: api }]));
  assert.ok(hold, '6 of 10 deleted by removing web');
  const gone = hold.bundles.find((b) => b.name === 'web');
  assert.equal(gone?.digest, '');
  assert.match(gone?.failures[0] ?? '', /removing the bundle would delete its 6 objects/);
  assert.equal(
    await massPruneHold(discovery, inv, state([{ name: 'api', objects: api }], undefined, ['web'])),
    undefined,
    'a held bundle is unknown, not removed',
  );
});

it('objects-moved-to-another-bundle-are-not-deletions', async () => {
  const inv = inventories({ web, api });
  const moved = state([
    { name: 'web', objects: [] },
    { name: 'api', objects: [...api, ...web] },
  ]);
  assert.equal(await massPruneHold(discovery, inv, moved), undefined);
});

it('opt-ins-of-the-cluster-or-the-bundle-release-a-hold-and-the-share-is-the-hub-s', async () => {
  const inv = inventories({ web, api });
  const bundles = [
    { name: 'web', objects: [] as KubeObject[] },
    { name: 'api', objects: api },
  ];
  assert.ok(await massPruneHold(discovery, inv, state(bundles, { maxShare: 0.5 })));
  assert.equal(
    await massPruneHold(discovery, inv, state(bundles, { maxShare: 0.5, allowMassPrune: true })),
    undefined,
  );
  assert.equal(
    await massPruneHold(
      discovery,
      inv,
      state([{ ...bundles[0]!, allowMassPrune: true }, bundles[1]!], { maxShare: 0.5 }),
    ),
    undefined,
  );
  const few = state([
    { name: 'web', objects: web.slice(0, 4) },
    { name: 'api', objects: api },
  ]);
  assert.equal(await massPruneHold(discovery, inv, few), undefined, '2 of 10 by default');
  assert.ok(await massPruneHold(discovery, inv, { ...few, prune: { maxShare: 0.1 } }));
});

it('namespaces-are-compared-as-applied-and-a-first-apply-is-never-held', async () => {
  const cr: KubeObject = {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRole',
    metadata: { name: 'reader', namespace: 'ignored' },
  };
  const bare = configMap('', 'bare', {});
  delete bare.metadata.namespace;
  const inv = new Map<string, Inventory>([
    [
      'web',
      {
        bundle: 'web',
        digest: 'old',
        revision: 'r0',
        entries: [
          { apiVersion: cr.apiVersion, kind: 'ClusterRole', name: 'reader' },
          { apiVersion: 'v1', kind: 'ConfigMap', name: 'bare', namespace: 'web' },
        ],
      },
    ],
  ]);
  const s = state([{ name: 'web', objects: [cr, bare] }]);
  assert.equal(await massPruneHold(discovery, inv, s, { defaultNamespace: 'web' }), undefined);
  assert.equal(
    await massPruneHold(discovery, new Map(), state([{ name: 'web', objects: [] }])),
    undefined,
  );
});
