// Bundle namespaces and dependsOn through reconcile against a real kube-apiserver. A bare
// API server runs no namespace controller: a deleted Namespace stays Terminating (its
// deletionTimestamp set), which is what these tests look for.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KubeObject } from '@flotilla/common';
import { requireEnv, startCluster } from '@flotilla/test-env';
import type { TestCluster } from '@flotilla/test-env';
import { InventoryStore } from '../inventory/inventory.js';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import { configMap, makeState } from '../testing/desired.js';
import type { TestBundle } from '../testing/desired.js';
import type { DependencyHealth } from './dependencies.js';
import { dependencyOrder } from './dependencies.js';
import { CREATED_BY_ANNOTATION } from './namespace.js';
import { reconcile as reconcileState } from './reconcile.js';
import type { ReconcileOptions } from './reconcile.js';

const skip = await requireEnv(['cluster']);

describe('bundle namespaces and dependsOn (real kube-apiserver)', { skip }, () => {
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
  let others: string[] = [];
  const reconcile = (bundles: TestBundle[], opts: ReconcileOptions = {}) => {
    const state = makeState('c1', `rev-${Date.now()}`, bundles);
    state.held = others.filter((o) => !bundles.some((b) => b.name === o));
    return reconcileState(kube, store, state, { guardMassPrune: false, ...opts });
  };
  const ns = (name: string): Promise<KubeObject | undefined> =>
    kube.get({ apiVersion: 'v1', kind: 'Namespace', name });
  const deleting = async (name: string): Promise<boolean> =>
    (await ns(name))?.metadata.deletionTimestamp !== undefined;

  it('the-namespace-is-created-with-labels-and-pruned-when-the-bundle-goes', async () => {
    others = ['web'];
    const web: TestBundle = {
      name: 'web',
      namespace: { name: 'ns-web', labels: { team: 'web' }, annotations: { owner: 'a@b' } },
      objects: [configMap('ns-web', 'settings', { v: '1' })],
    };
    const out = await reconcile([web]);
    assert.equal(out.result, 'applied');
    const live = await ns('ns-web');
    assert.equal(live?.metadata.labels?.team, 'web');
    assert.equal(live?.metadata.annotations?.owner, 'a@b');
    assert.equal(live?.metadata.annotations?.[CREATED_BY_ANNOTATION], 'web');
    assert.deepEqual((await store.list()).get('web')?.namespace, { name: 'ns-web', created: true });
    // Steady state: nothing written.
    assert.equal((await reconcile([web])).writes, 0);
    others = [];
    const removed = await reconcile([]);
    assert.equal(removed.result, 'applied');
    assert.ok(await deleting('ns-web'), 'the namespace it created, left empty, is deleted');
  });

  it('a-namespace-that-existed-before-is-never-pruned', async () => {
    others = ['api'];
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns-api' } });
    const api: TestBundle = {
      name: 'api',
      namespace: { name: 'ns-api' },
      objects: [configMap('ns-api', 'settings', { v: '1' })],
    };
    assert.equal((await reconcile([api])).result, 'applied');
    assert.equal((await ns('ns-api'))?.metadata.annotations?.[CREATED_BY_ANNOTATION], undefined);
    others = [];
    await reconcile([]);
    assert.equal(await deleting('ns-api'), false);
    assert.equal(
      await kube.get({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        namespace: 'ns-api',
        name: 'settings',
      }),
      undefined,
      'the bundle objects are gone',
    );
  });

  it('a-created-namespace-that-holds-something-else-is-kept', async () => {
    others = ['shared'];
    const shared: TestBundle = {
      name: 'shared',
      namespace: { name: 'ns-shared' },
      objects: [configMap('ns-shared', 'settings', { v: '1' })],
    };
    assert.equal((await reconcile([shared])).result, 'applied');
    await kube.apply(configMap('ns-shared', 'someone-elses', { x: '1' }));
    others = [];
    const out = await reconcile([]);
    assert.equal(await deleting('ns-shared'), false);
    assert.deepEqual(
      out.bundles.map((b) => [b.name, b.deleted, b.unchanged]),
      [['shared', 1, 1]],
    );
  });

  it('a-renamed-namespace-is-pruned-once-the-objects-moved-out', async () => {
    others = ['mover'];
    const mover = (n: string): TestBundle => ({
      name: 'mover',
      namespace: { name: n },
      objects: [configMap(n, 'settings', { v: '1' })],
    });
    await reconcile([mover('ns-old')]);
    const out = await reconcile([mover('ns-new')]);
    assert.equal(out.result, 'applied');
    assert.ok(await deleting('ns-old'));
    assert.equal(await deleting('ns-new'), false);
    assert.deepEqual((await store.list()).get('mover')?.namespace, {
      name: 'ns-new',
      created: true,
    });
  });

  it('a-namespaced-mode-agent-refuses-namespace-labels-and-applies-the-rest', async () => {
    others = ['mover', 'locked'];
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ns-locked' } });
    const locked: TestBundle = {
      name: 'locked',
      namespace: { name: 'ns-locked', labels: { team: 'x' } },
      objects: [configMap('ns-locked', 'settings', { v: '1' })],
    };
    const out = await reconcile([locked], { namespaces: ['ns-locked'] });
    assert.equal(out.result, 'partial');
    assert.match(
      out.bundles[0]?.failures[0] ?? '',
      /^Namespace\/ns-locked: refused: namespaceLabels/,
    );
    assert.equal(out.bundles[0]?.created, 1, 'the ConfigMap');
    assert.equal((await ns('ns-locked'))?.metadata.labels?.team, undefined);
  });

  it('dependsOn-holds-a-bundle-until-its-dependency-is-healthy-and-touches-nothing-meanwhile', async () => {
    others = ['mover', 'locked', 'db', 'site'];
    let ready = false;
    const health: DependencyHealth = (bundle) =>
      ready || bundle !== 'db'
        ? { ready: true }
        : {
            ready: false,
            reason: 'Progressing (apps/Deployment/db/db: 0 of 1 replicas available)',
          };
    const db = (v: string): TestBundle => ({
      name: 'db',
      objects: [configMap('default', 'db-settings', { v })],
    });
    const site = (v: string): TestBundle => ({
      name: 'site',
      dependsOn: ['db'],
      objects: [configMap('default', 'site-settings', { v })],
    });
    const opts = { dependencyHealth: health };
    const first = await reconcile([db('1'), site('1')], opts);
    assert.equal(first.result, 'waiting');
    assert.deepEqual(
      first.bundles.map((b) => [b.name, b.created, b.waiting]),
      [
        ['db', 1, undefined],
        [
          'site',
          0,
          {
            for: 'db',
            reason:
              'waiting for bundle db: Progressing (apps/Deployment/db/db: 0 of 1 replicas available)',
          },
        ],
      ],
    );
    assert.deepEqual(first.wakes, [{ kind: 'bundle', bundle: 'db' }]);
    const cm = (name: string) =>
      kube.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name });
    assert.equal(await cm('site-settings'), undefined);
    ready = true;
    assert.equal((await reconcile([db('1'), site('1')], opts)).result, 'applied');
    assert.deepEqual((await cm('site-settings'))?.data, { v: '1' });
    // A new version of both: site keeps running its old one until db is healthy again.
    ready = false;
    const next = await reconcile([db('2'), site('2')], opts);
    assert.equal(next.bundles.find((b) => b.name === 'site')?.waiting?.for, 'db');
    assert.deepEqual(next.notApplied, ['site']);
    assert.deepEqual((await cm('site-settings'))?.data, { v: '1' });
    assert.deepEqual((await cm('db-settings'))?.data, { v: '2' });
    ready = true;
    await reconcile([db('2'), site('2')], opts);
    assert.deepEqual((await cm('site-settings'))?.data, { v: '2' });
  });

  it('dependencies-are-reconciled-first-whatever-their-names', () => {
    const order = dependencyOrder(
      makeState('c1', 'r', [
        { name: 'a-app', dependsOn: ['z-db'], objects: [] },
        { name: 'm-web', dependsOn: ['a-app'], objects: [] },
        { name: 'z-db', objects: [] },
      ]).bundles,
    );
    assert.deepEqual(
      order.map((b) => b.name),
      ['z-db', 'a-app', 'm-web'],
    );
  });
});
