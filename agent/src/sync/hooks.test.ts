// Helm hooks through reconcile against a real kube-apiserver. A bare API server runs no
// Job controller: each test plays it by writing the hook Job's status subresource
// (finishJob), as the health tests write Deployment status.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { KubeObject } from '@flotilla/common';
import { requireEnv, startCluster } from '@flotilla/test-env';
import type { TestCluster } from '@flotilla/test-env';
import { DeleteHookStore } from '../hooks/store.js';
import { InventoryStore } from '../inventory/inventory.js';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import { configMap, hook, job, makeState } from '../testing/desired.js';
import type { TestBundle } from '../testing/desired.js';
import { finishJob } from '../testing/job-status.js';
import { reconcile as reconcileState } from './reconcile.js';
import type { ReconcileOptions } from './reconcile.js';

const skip = await requireEnv(['cluster']);

describe('helm hooks (real kube-apiserver)', { skip }, () => {
  let api: TestCluster;
  let kube: KubeClient;
  let store: InventoryStore;
  let deleteHooks: DeleteHookStore;
  before(async () => {
    api = await startCluster();
    kube = await KubeClient.create(loadKubeConfig(api.kubeconfigPath));
    store = new InventoryStore(kube, 'flotilla-system');
    deleteHooks = new DeleteHookStore(kube, 'flotilla-system');
  });
  after(async () => {
    kube?.close();
    await api?.stop();
  });
  // Each test sends only its own bundles: the mass-prune guard would hold them as removing
  // every other test's, so it is off; and the other tests' bundles are held, not removed.
  let others: string[] = [];
  const reconcile = (bundles: TestBundle[], opts: ReconcileOptions = {}) => {
    const state = makeState('c1', `rev-${Date.now()}`, bundles);
    state.held = others.filter((o) => !bundles.some((b) => b.name === o));
    return reconcileState(kube, store, state, { guardMassPrune: false, deleteHooks, ...opts });
  };
  const get = (kind: string, namespace: string, name: string): Promise<KubeObject | undefined> =>
    kube.get({ apiVersion: kind === 'Job' ? 'batch/v1' : 'v1', kind, namespace, name });

  it('pre-install-job-runs-first-and-nothing-else-is-applied-until-it-completes', async () => {
    others = ['app'];
    const app = (image: string, data: string): TestBundle => ({
      name: 'app',
      namespace: { name: 'hk-app' },
      objects: [configMap('hk-app', 'settings', { v: data })],
      hooks: [hook(job('hk-app', 'migrate', image), ['pre-install', 'pre-upgrade'])],
    });
    const first = await reconcile([app('busybox:1', 'one')]);
    assert.equal(first.result, 'waiting');
    assert.deepEqual(first.bundles[0]?.waiting, {
      for: 'pre-install hook Job/hk-app/migrate',
      reason: 'waiting for pre-install hook Job/hk-app/migrate to complete',
    });
    assert.deepEqual(first.notApplied, ['app']);
    assert.deepEqual(
      first.wakes.map((w) => (w.kind === 'object' ? [w.ref.name, w.until] : [])),
      [['migrate', 'finished']],
    );
    const hookJob = await get('Job', 'hk-app', 'migrate');
    assert.ok(hookJob, 'the hook Job was created');
    assert.equal(await get('ConfigMap', 'hk-app', 'settings'), undefined, 'nothing else yet');
    // Still running: a reconcile (resync, retry) waits again and creates nothing new.
    const again = await reconcile([app('busybox:1', 'one')]);
    assert.equal(again.result, 'waiting');
    assert.equal((await get('Job', 'hk-app', 'migrate'))?.metadata.uid, hookJob.metadata.uid);

    await finishJob(kube, 'hk-app', 'migrate', 'Complete');
    const done = await reconcile([app('busybox:1', 'one')]);
    assert.equal(done.result, 'applied');
    assert.deepEqual((await get('ConfigMap', 'hk-app', 'settings'))?.data, { v: 'one' });
    // The hook is not an object of the bundle: not in its inventory, never pruned.
    const inv = (await store.list()).get('app');
    assert.deepEqual(
      inv?.entries.map((r) => r.kind),
      ['ConfigMap'],
    );
    assert.equal((await get('Job', 'hk-app', 'migrate'))?.metadata.uid, hookJob.metadata.uid);
    // Nothing changed: a resync runs no hook again.
    const resync = await reconcile([app('busybox:1', 'one')]);
    assert.deepEqual([resync.result, resync.writes], ['applied', 0]);

    // An upgrade changes the Job's pod template, which Kubernetes forbids in place: the
    // default before-hook-creation policy deletes the old Job and creates the new one.
    const upgrade = await reconcile([app('busybox:2', 'two')]);
    assert.equal(upgrade.result, 'waiting');
    assert.equal(upgrade.bundles[0]?.waiting?.for, 'pre-upgrade hook Job/hk-app/migrate');
    const second = await get('Job', 'hk-app', 'migrate');
    assert.notEqual(second?.metadata.uid, hookJob.metadata.uid);
    const spec = second?.spec as { template: { spec: { containers: { image: string }[] } } };
    assert.equal(spec.template.spec.containers[0]?.image, 'busybox:2');
    assert.deepEqual((await get('ConfigMap', 'hk-app', 'settings'))?.data, { v: 'one' });
    await finishJob(kube, 'hk-app', 'migrate', 'Complete');
    const upgraded = await reconcile([app('busybox:2', 'two')]);
    assert.equal(upgraded.result, 'applied');
    assert.deepEqual((await get('ConfigMap', 'hk-app', 'settings'))?.data, { v: 'two' });
  });

  it('a-new-version-before-the-first-install-finished-is-still-an-install', async () => {
    others = ['app', 'early'];
    const early = (data: string): TestBundle => ({
      name: 'early',
      namespace: { name: 'hk-early' },
      objects: [configMap('hk-early', 'settings', { v: data })],
      hooks: [hook(job('hk-early', 'setup'), ['pre-install'])],
    });
    assert.equal((await reconcile([early('1')])).result, 'waiting');
    // A commit arrives while the pre-install hook runs: still an install (nothing of the
    // bundle was applied), so the pre-install hook runs again for the new content.
    const next = await reconcile([early('2')]);
    assert.equal(next.bundles[0]?.waiting?.for, 'pre-install hook Job/hk-early/setup');
    await finishJob(kube, 'hk-early', 'setup', 'Complete');
    assert.equal((await reconcile([early('2')])).result, 'applied');
    assert.deepEqual((await get('ConfigMap', 'hk-early', 'settings'))?.data, { v: '2' });
  });

  it('a-failed-hook-job-fails-the-bundle-with-its-reason-and-applies-nothing', async () => {
    others = ['app', 'early', 'broken'];
    const broken: TestBundle = {
      name: 'broken',
      namespace: { name: 'hk-broken' },
      objects: [configMap('hk-broken', 'settings', { v: '1' })],
      hooks: [hook(job('hk-broken', 'migrate'), ['pre-install'])],
    };
    assert.equal((await reconcile([broken])).result, 'waiting');
    const failedJob = await get('Job', 'hk-broken', 'migrate');
    await finishJob(kube, 'hk-broken', 'migrate', 'Failed');
    const out = await reconcile([broken]);
    // 'partial': its namespace was created; none of its objects were applied.
    assert.equal(out.result, 'partial');
    assert.deepEqual(out.bundles[0]?.failures, [
      'pre-install hook Job/hk-broken/migrate failed: BackoffLimitExceeded: Job has reached the specified backoff limit',
    ]);
    assert.equal(await get('ConfigMap', 'hk-broken', 'settings'), undefined);
    // Not re-run on a retry: the same bundle stays failed until it changes.
    const retry = await reconcile([broken]);
    assert.equal(retry.bundles[0]?.failed, 1);
    assert.equal((await get('Job', 'hk-broken', 'migrate'))?.metadata.uid, failedJob?.metadata.uid);
  });

  it('a-hook-job-that-never-finishes-fails-at-the-timeout', async () => {
    others = ['app', 'early', 'broken', 'slow'];
    let now = Date.now();
    const slow: TestBundle = {
      name: 'slow',
      namespace: { name: 'hk-slow' },
      objects: [configMap('hk-slow', 'settings', { v: '1' })],
      hooks: [hook(job('hk-slow', 'migrate'), ['pre-install'], ['hook-failed'])],
    };
    const opts = { hookTimeoutMs: 60_000, now: () => now };
    const first = await reconcile([slow], opts);
    assert.equal(first.result, 'waiting');
    const wake = first.wakes[0];
    assert.equal(wake?.kind === 'object' ? wake.deadlineMs : 0, now + 60_000);
    now += 60_001;
    const out = await reconcile([slow], opts);
    assert.equal(out.bundles[0]?.failed, 1);
    assert.match(
      out.bundles[0]?.failures[0] ?? '',
      /^pre-install hook Job\/hk-slow\/migrate did not complete within 60 s$/,
    );
    // hook-failed: the failed hook is deleted.
    assert.equal(await get('Job', 'hk-slow', 'migrate'), undefined);
  });

  it('post-install-runs-after-the-objects-and-hook-succeeded-deletes-it', async () => {
    others = ['app', 'early', 'broken', 'slow', 'post'];
    const post: TestBundle = {
      name: 'post',
      namespace: { name: 'hk-post' },
      objects: [configMap('hk-post', 'settings', { v: '1' })],
      hooks: [hook(job('hk-post', 'notify'), ['post-install'], ['hook-succeeded'])],
    };
    const first = await reconcile([post]);
    assert.equal(first.result, 'waiting');
    assert.equal(first.bundles[0]?.waiting?.for, 'post-install hook Job/hk-post/notify');
    assert.deepEqual(first.notApplied, [], 'its objects are applied');
    assert.ok(await get('ConfigMap', 'hk-post', 'settings'));
    await finishJob(kube, 'hk-post', 'notify', 'Complete');
    const done = await reconcile([post]);
    assert.equal(done.result, 'applied');
    assert.equal(await get('Job', 'hk-post', 'notify'), undefined, 'hook-succeeded deleted it');
    assert.equal((await reconcile([post])).result, 'applied', 'and it does not run again');
    assert.equal(await get('Job', 'hk-post', 'notify'), undefined);
  });

  it('pre-delete-runs-when-the-bundle-is-removed-then-its-objects-go', async () => {
    others = ['app', 'early', 'broken', 'slow', 'post', 'gone'];
    const gone: TestBundle = {
      name: 'gone',
      objects: [configMap('default', 'gone-settings', { v: '1' })],
      hooks: [hook(job('default', 'gone-cleanup'), ['pre-delete'])],
    };
    const installed = await reconcile([gone]);
    assert.equal(installed.result, 'applied', JSON.stringify(installed.bundles));
    assert.equal(await get('Job', 'default', 'gone-cleanup'), undefined, 'not at install');
    others = others.filter((o) => o !== 'gone');
    const removing = await reconcile([]);
    assert.equal(removing.result, 'waiting');
    assert.deepEqual(
      removing.bundles.map((b) => [b.name, b.waiting?.for]),
      [['gone', 'pre-delete hook Job/default/gone-cleanup']],
    );
    assert.ok(
      await get('ConfigMap', 'default', 'gone-settings'),
      'objects stay until it completes',
    );
    await finishJob(kube, 'default', 'gone-cleanup', 'Complete');
    const removed = await reconcile([]);
    assert.equal(removed.result, 'applied');
    assert.deepEqual(
      removed.bundles.map((b) => [b.name, b.deleted, b.failed]),
      [['gone', 1, 0]],
    );
    assert.equal(await get('ConfigMap', 'default', 'gone-settings'), undefined);
    assert.equal((await store.list()).has('gone'), false);
    assert.deepEqual(await deleteHooks.read('gone'), []);
  });
});
