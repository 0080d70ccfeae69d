// The apply engine, inventory and prune against a real kube-apiserver.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { BUNDLE_LABEL, KEEP_ON_PRUNE_ANNOTATION } from '@flotilla/common';
import type { KubeObject } from '@flotilla/common';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import { InventoryStore } from '../inventory/inventory.js';
import { StateStore } from '../inventory/state-store.js';
import { requireEnv, startCluster } from '@flotilla/test-env';
import type { TestCluster } from '@flotilla/test-env';
import { configMap, makeState } from '../testing/desired.js';
import { reconcile as reconcileState } from './reconcile.js';
import type { ReconcileOptions } from './reconcile.js';

const skip = await requireEnv(['cluster']);
// These tests are about the apply engine. Each sends only its own bundles, which the
// mass-prune guard would hold as removing every other test's: it is off unless a test asks.
const reconcile: typeof reconcileState = (kube, store, state, opts: ReconcileOptions = {}) =>
  reconcileState(kube, store, state, { guardMassPrune: false, ...opts });
const ns = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name },
});

describe('reconcile (real kube-apiserver)', { skip }, () => {
  let api: TestCluster;
  let kube: KubeClient;
  let store: InventoryStore;
  before(async () => {
    api = await startCluster();
    kube = await KubeClient.create(loadKubeConfig(api.kubeconfigPath));
    store = new InventoryStore(kube, 'flotilla-system');
  });
  after(async () => {
    kube?.close();
    await api?.stop();
  });
  const cm = (namespace: string, name: string): Promise<KubeObject | undefined> =>
    kube.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace, name });

  it('apply-creates-objects-and-a-second-apply-makes-no-writes', async () => {
    const state = makeState('c1', 'rev1', [
      {
        name: 'web',
        objects: [ns('web'), configMap('web', 'a', { x: '1' }), configMap('web', 'b', { y: '2' })],
      },
    ]);
    const first = await reconcile(kube, store, state);
    assert.equal(first.result, 'applied');
    assert.deepEqual([first.bundles[0]?.created, first.objectsFailed], [3, 0]);
    const live = await cm('web', 'a');
    assert.equal(live?.metadata.labels?.[BUNDLE_LABEL], 'web');
    const second = await reconcile(kube, store, state);
    assert.deepEqual([second.bundles[0]?.unchanged, second.writes], [3, 0]);
    assert.equal((await cm('web', 'a'))?.metadata.resourceVersion, live?.metadata.resourceVersion);
  });

  it('crd-and-its-custom-resource-apply-in-one-go', async () => {
    const crd: KubeObject = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com',
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } },
              },
            },
          },
        ],
      },
    };
    // The CR comes first in the list on purpose: ordering is the engine's job.
    const widget: KubeObject = {
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      metadata: { name: 'w1', namespace: 'crd' },
      spec: { size: 3 },
    };
    const out = await reconcile(
      kube,
      store,
      makeState('c1', 'rev1', [{ name: 'crd', objects: [widget, crd, ns('crd')] }]),
    );
    assert.equal(out.result, 'applied', JSON.stringify(out.bundles));
    const live = await kube.get({
      apiVersion: 'example.com/v1',
      kind: 'Widget',
      namespace: 'crd',
      name: 'w1',
    });
    assert.deepEqual(live?.spec, { size: 3 });
  });

  it('misspelled-field-fails-with-the-server-message-and-the-rest-applies', async () => {
    const bad = { ...configMap('typo', 'bad', {}), dta: { x: '1' } } as KubeObject;
    const out = await reconcile(
      kube,
      store,
      makeState('c1', 'rev1', [
        { name: 'typo', objects: [ns('typo'), bad, configMap('typo', 'good', { x: '1' })] },
      ]),
    );
    assert.equal(out.result, 'partial');
    const b = out.bundles.find((x) => x.name === 'typo');
    assert.equal(b?.failed, 1);
    assert.match(
      b?.failures[0] ?? '',
      /ConfigMap\/typo\/bad: .*\.dta: field not declared in schema/,
    );
    assert.ok(await cm('typo', 'good'));
  });

  it('prune-removes-a-dropped-object-and-keeps-an-annotated-one', async () => {
    const keep = configMap('prune', 'keep', { k: '1' }, { [KEEP_ON_PRUNE_ANNOTATION]: 'disabled' });
    const objs = [
      ns('prune'),
      configMap('prune', 'stay', { s: '1' }),
      configMap('prune', 'drop', { d: '1' }),
      keep,
    ];
    await reconcile(kube, store, makeState('c1', 'rev1', [{ name: 'prune', objects: objs }]));
    const out = await reconcile(
      kube,
      store,
      makeState('c1', 'rev2', [
        { name: 'prune', objects: [ns('prune'), configMap('prune', 'stay', { s: '1' })] },
      ]),
    );
    assert.equal(out.bundles[0]?.deleted, 1);
    assert.equal(await cm('prune', 'drop'), undefined);
    assert.ok(await cm('prune', 'keep'));
    assert.ok(await cm('prune', 'stay'));
    const inv = (await store.list()).get('prune');
    assert.deepEqual(inv?.entries.map((r) => r.name).sort(), ['prune', 'stay']);
  });

  it('objects-not-in-the-inventory-are-never-deleted', async () => {
    await kube.apply(configMap('default', 'foreign', { f: '1' }));
    await reconcile(
      kube,
      store,
      makeState('c1', 'rev1', [
        { name: 'other', objects: [configMap('default', 'mine', { m: '1' })] },
      ]),
    );
    await reconcile(kube, store, makeState('c1', 'rev2', [{ name: 'other', objects: [] }]));
    assert.equal(await cm('default', 'mine'), undefined);
    assert.ok(await cm('default', 'foreign'));
  });

  it('a-bundle-dropped-from-the-desired-state-is-deleted-entirely', async () => {
    const both = makeState('c1', 'rev1', [
      {
        name: 'gone',
        objects: [
          configMap('default', 'gone-1', { a: '1' }),
          configMap('default', 'gone-2', { a: '2' }),
        ],
      },
      { name: 'kept', objects: [configMap('default', 'kept-1', { a: '1' })] },
    ]);
    await reconcile(kube, store, both);
    const out = await reconcile(
      kube,
      store,
      makeState('c1', 'rev2', [
        { name: 'kept', objects: [configMap('default', 'kept-1', { a: '1' })] },
      ]),
    );
    assert.equal(out.bundles.find((b) => b.name === 'gone')?.deleted, 2);
    assert.equal(await cm('default', 'gone-1'), undefined);
    assert.ok(await cm('default', 'kept-1'));
    assert.equal((await store.list()).has('gone'), false);
  });

  it('a-state-held-by-the-mass-prune-guard-applies-and-prunes-nothing', async () => {
    const objs = [
      ns('held'),
      configMap('held', 'a', { v: '1' }),
      configMap('held', 'b', { v: '1' }),
    ];
    await reconcile(kube, store, makeState('c1', 'rev1', [{ name: 'held', objects: objs }]));
    let stored = false;
    const emptied = makeState('c1', 'rev2', [
      { name: 'held', objects: [] },
      { name: 'fresh', objects: [configMap('held', 'new', { v: '1' })] },
    ]);
    const out = await reconcile(kube, store, emptied, {
      guardMassPrune: true,
      beforeWrites: async () => {
        stored = true;
      },
    });
    assert.equal(out.result, 'failed');
    assert.match(
      out.held?.message ?? '',
      /bundle held has no objects at this revision but manages 3/,
    );
    assert.equal(out.writes, 0);
    assert.equal(stored, false, 'a held state is not admitted');
    assert.ok(await cm('held', 'a'));
    assert.equal(await cm('held', 'new'), undefined, 'nothing of a held state is applied');
    assert.equal((await store.list()).get('held')?.entries.length, 3);
  });

  it('a-field-owned-by-another-manager-is-reported-without-force-and-taken-over-with-force', async () => {
    // Another tool (kubectl) owns data.a.
    await kube.request({
      method: 'PATCH',
      path: '/api/v1/namespaces/default/configmaps/contested',
      query: { fieldManager: 'kubectl' },
      contentType: 'application/apply-patch+yaml',
      body: configMap('default', 'contested', { a: 'theirs' }),
    });
    const ours = [configMap('default', 'contested', { a: 'ours' })];
    const reported = await reconcile(
      kube,
      store,
      makeState('c1', 'rev1', [{ name: 'conflict', objects: ours, forceConflicts: false }]),
    );
    assert.equal(reported.bundles[0]?.failed, 1);
    assert.match(reported.bundles[0]?.failures[0] ?? '', /conflict/i);
    assert.equal((await cm('default', 'contested'))?.data?.['a' as never], 'theirs');
    const forced = await reconcile(
      kube,
      store,
      makeState('c1', 'rev1', [{ name: 'conflict', objects: ours, forceConflicts: true }]),
    );
    assert.equal(forced.bundles[0]?.configured, 1);
    assert.equal(((await cm('default', 'contested'))?.data as Record<string, string>).a, 'ours');
  });

  it('an-object-that-failed-on-a-conflict-is-not-adopted-and-never-pruned', async () => {
    await kube.request({
      method: 'PATCH',
      path: '/api/v1/namespaces/default/configmaps/foreign-owned',
      query: { fieldManager: 'helm' },
      contentType: 'application/apply-patch+yaml',
      body: configMap('default', 'foreign-owned', { a: 'theirs' }),
    });
    const first = await reconcile(
      kube,
      store,
      makeState('c1', 'rev1', [
        {
          name: 'polite',
          objects: [configMap('default', 'foreign-owned', { a: 'ours' })],
          forceConflicts: false,
        },
      ]),
    );
    assert.equal(first.bundles[0]?.failed, 1);
    assert.deepEqual((await store.list()).get('polite')?.entries, []);
    await reconcile(kube, store, makeState('c1', 'rev2', [{ name: 'polite', objects: [] }]));
    assert.ok(await cm('default', 'foreign-owned'));
  });

  it('an-object-moved-to-another-bundle-is-relabelled-not-deleted', async () => {
    const moving = configMap('default', 'moving', { m: '1' });
    await reconcile(
      kube,
      store,
      makeState('c1', 'rev1', [
        { name: 'aa', objects: [moving] },
        { name: 'bb', objects: [] },
      ]),
    );
    const before = await cm('default', 'moving');
    // "aa" is reconciled first and no longer declares it; "bb" now does.
    const out = await reconcile(
      kube,
      store,
      makeState('c1', 'rev2', [
        { name: 'aa', objects: [] },
        { name: 'bb', objects: [moving] },
      ]),
    );
    assert.deepEqual(
      out.bundles.map((b) => [b.name, b.deleted]),
      [
        ['aa', 0],
        ['bb', 0],
      ],
    );
    const after = await cm('default', 'moving');
    assert.equal(after?.metadata.uid, before?.metadata.uid);
    assert.equal(after?.metadata.labels?.[BUNDLE_LABEL], 'bb');
    assert.deepEqual((await store.list()).get('aa')?.entries, []);
  });

  it('state-store-round-trips-a-state-split-across-several-secrets', async () => {
    const small = new StateStore(kube, 'flotilla-system', 64);
    const big = makeState('c1', 'rev9', [
      {
        name: 'web',
        objects: Array.from({ length: 20 }, (_, i) =>
          configMap('web', `m${i}`, { v: String(i * 7919) }),
        ),
      },
    ]);
    await small.save(big, { digest: big.digest, revision: 'rev9' });
    const back = await small.load();
    assert.deepEqual(back?.state, big);
    assert.deepEqual(back?.applied, { digest: big.digest, revision: 'rev9' });
    const fewer = makeState('c1', 'rev10', []);
    await small.save(fewer, { digest: '', revision: '' });
    assert.deepEqual((await small.load())?.state, fewer);
    const parts = await kube.list('v1', 'Secret', {
      namespace: 'flotilla-system',
      labelSelector: 'flotilla.dev/state=part',
    });
    const head = parts.find((p) => p.metadata.name === 'flotilla-state-0');
    assert.equal(String(parts.length), head?.metadata.annotations?.['flotilla.dev/parts']);
  });
});
