// Drift detection, self-heal and health against a real kube-apiserver: external writes
// are made with other field managers, exactly as kubectl or a controller would.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '@flotilla/common';
import type {
  DesiredState,
  DriftCorrectedData,
  DriftDetectedData,
  EventKind,
  HealthChangedData,
  KubeObject,
} from '@flotilla/common';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import { InventoryStore } from '../inventory/inventory.js';
import { reconcile } from '../sync/reconcile.js';
import { configMap, deployment, makeState } from '../testing/desired.js';
import type { TestBundle } from '../testing/desired.js';
import { requireEnv, startCluster } from '@flotilla/test-env';
import type { TestCluster } from '@flotilla/test-env';
import { until } from '../testing/scripted-hub.js';
import { DriftController } from './controller.js';
import { HealPolicy } from './heal-policy.js';

const skip = await requireEnv(['cluster']);

/** Records published events, as the EventPublisher would send them. */
class Recorder {
  events: { kind: EventKind; id: string; data: unknown }[] = [];
  private n = 0;
  publish<T>(kind: EventKind, data: T): { id: string } {
    const id = `ev-${++this.n}`;
    this.events.push({ kind, id, data });
    return { id };
  }
  of<T>(kind: EventKind, filter: (d: T) => boolean = () => true): T[] {
    return this.events
      .filter((e) => e.kind === kind)
      .map((e) => e.data as T)
      .filter(filter);
  }
}

const ns = (name: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Namespace',
  metadata: { name },
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('drift and health (real kube-apiserver)', { skip }, () => {
  let api: TestCluster;
  let kube: KubeClient;
  const controllers: DriftController[] = [];
  before(async () => {
    api = await startCluster();
    kube = await KubeClient.create(loadKubeConfig(api.kubeconfigPath));
  });
  after(async () => {
    await Promise.all(controllers.map((c) => c.stop()));
    kube?.close();
    await api?.stop();
  });

  /** Applies bundles (each test uses its own namespace and bundle names) and starts enforcing them. */
  async function enforce(
    bundles: TestBundle[],
    policy?: HealPolicy,
  ): Promise<{ rec: Recorder; state: DesiredState }> {
    const rec = new Recorder();
    const c = new DriftController(kube, rec, {
      logger: silentLogger(),
      ...(policy ? { policy } : {}),
      healthDebounceMs: 50,
    });
    controllers.push(c);
    const state = makeState('c1', 'rev1', bundles);
    c.beforeApply();
    // Each test has its own inventory namespace, so one test's reconcile never prunes another's bundles.
    const out = await reconcile(
      kube,
      new InventoryStore(kube, `inv-${bundles[0]?.name ?? 'x'}`),
      state,
    );
    assert.equal(out.result, 'applied', JSON.stringify(out.bundles));
    await c.afterApply(state, out.bundles);
    return { rec, state };
  }

  /** A change by another field manager (merge patch, like kubectl edit). */
  const patch = (path: string, body: unknown, manager = 'kubectl-edit'): Promise<unknown> =>
    kube.request({
      method: 'PATCH',
      path,
      query: { fieldManager: manager },
      contentType: 'application/merge-patch+json',
      body,
    });

  it('a-changed-managed-field-is-detected-from-the-watch-attributed-and-healed', async () => {
    const { rec } = await enforce([
      {
        name: 'd1',
        objects: [ns('d1'), configMap('d1', 'settings', { color: 'blue', size: 'L' })],
      },
    ]);
    await patch('/api/v1/namespaces/d1/configmaps/settings', { data: { color: 'red' } });
    const [d] = await until(
      () =>
        rec.of<DriftDetectedData>('drift-detected').length > 0 &&
        rec.of<DriftDetectedData>('drift-detected'),
      'drift-detected',
    );
    assert.deepEqual(d?.changes, [{ path: '/data/color', old: 'blue', new: 'red' }]);
    assert.equal(d?.manager, 'kubectl-edit');
    assert.deepEqual(
      [d?.bundle, d?.object.name, d?.mode, d?.fight, d?.deleted],
      ['d1', 'settings', 'enforce', false, false],
    );
    const [fixed] = await until(
      () =>
        rec.of<DriftCorrectedData>('drift-corrected').length > 0 &&
        rec.of<DriftCorrectedData>('drift-corrected'),
      'drift-corrected',
    );
    assert.equal(fixed?.driftEventId, rec.events.find((e) => e.kind === 'drift-detected')?.id);
    const live = await kube.get({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: 'd1',
      name: 'settings',
    });
    assert.deepEqual(live?.data, { color: 'blue', size: 'L' });
  });

  it('a-deleted-object-is-re-created', async () => {
    const { rec } = await enforce([
      { name: 'd2', objects: [ns('d2'), configMap('d2', 'gone', { a: '1' })] },
    ]);
    await kube.delete({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'd2', name: 'gone' });
    await until(
      () => kube.get({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'd2', name: 'gone' }),
      're-created',
    );
    assert.equal(rec.of<DriftDetectedData>('drift-detected')[0]?.deleted, true);
  });

  it('hpa-owned-replicas-and-server-defaults-are-not-drift', async () => {
    const { rec } = await enforce([
      {
        name: 'd3',
        objects: [ns('d3'), deployment('d3', 'web'), configMap('d3', 'marker', { m: '1' })],
      },
    ]);
    // An autoscaler scales through its own field manager; the server defaulted replicas, strategy, ... before.
    await patch(
      '/apis/apps/v1/namespaces/d3/deployments/web',
      { spec: { replicas: 5 } },
      'horizontal-pod-autoscaler',
    );
    // A later real drift on another object proves the watch is live and the replicas change was looked at.
    await sleep(300);
    await patch('/api/v1/namespaces/d3/configmaps/marker', { data: { m: '2' } });
    await until(() => rec.of<DriftDetectedData>('drift-detected').length > 0, 'marker drift');
    assert.deepEqual(
      rec.of<DriftDetectedData>('drift-detected').map((d) => d.object.name),
      ['marker'],
    );
    const live = await kube.get({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: 'd3',
      name: 'web',
    });
    assert.equal((live?.spec as { replicas: number }).replicas, 5);
  });

  it('ignore-rules-are-honoured', async () => {
    const drift = {
      mode: 'enforce' as const,
      ignore: [{ kind: 'ConfigMap', name: 'tuned', paths: ['/data/level'] }],
    };
    const { rec } = await enforce([
      {
        name: 'd4',
        drift,
        objects: [ns('d4'), configMap('d4', 'tuned', { level: '1', fixed: 'x' })],
      },
    ]);
    await patch('/api/v1/namespaces/d4/configmaps/tuned', { data: { level: '9' } });
    await sleep(300);
    assert.equal(rec.of('drift-detected').length, 0);
    await patch('/api/v1/namespaces/d4/configmaps/tuned', { data: { fixed: 'y' } });
    const [d] = await until(
      () =>
        rec.of<DriftDetectedData>('drift-detected').length > 0 &&
        rec.of<DriftDetectedData>('drift-detected'),
      'drift',
    );
    assert.deepEqual(
      d?.changes.map((c) => c.path),
      ['/data/fixed'],
    );
  });

  it('warn-mode-reports-drift-and-does-not-heal', async () => {
    const { rec } = await enforce([
      {
        name: 'd5',
        drift: { mode: 'warn', ignore: [] },
        objects: [ns('d5'), configMap('d5', 'loose', { a: '1' })],
      },
    ]);
    await patch('/api/v1/namespaces/d5/configmaps/loose', { data: { a: '2' } });
    const [d] = await until(
      () =>
        rec.of<DriftDetectedData>('drift-detected').length > 0 &&
        rec.of<DriftDetectedData>('drift-detected'),
      'drift',
    );
    assert.equal(d?.mode, 'warn');
    await sleep(300);
    assert.equal(rec.of('drift-corrected').length, 0);
    const live = await kube.get({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      namespace: 'd5',
      name: 'loose',
    });
    assert.deepEqual(live?.data, { a: '2' });
  });

  it('a-fight-is-detected-and-healing-backs-off', async () => {
    const policy = new HealPolicy({
      windowMs: 60_000,
      fightThreshold: 3,
      initialMs: 100,
      maxMs: 10_000,
    });
    const { rec } = await enforce(
      [{ name: 'd6', objects: [ns('d6'), configMap('d6', 'contested', { owner: 'git' })] }],
      policy,
    );
    // Another controller writes its value back every time we heal.
    for (let round = 1; round <= 4; round++) {
      await patch(
        '/api/v1/namespaces/d6/configmaps/contested',
        { data: { owner: `controller-${round}` } },
        'other-controller',
      );
      await until(() => rec.of('drift-corrected').length >= round, `heal ${round}`);
    }
    const detected = rec.of<DriftDetectedData>('drift-detected');
    assert.deepEqual(
      detected.map((d) => d.heals),
      [1, 2, 3, 4],
    );
    assert.deepEqual(
      detected.map((d) => d.fight),
      [false, false, true, true],
    );
    assert.deepEqual(
      detected.map((d) => d.healDelayMs),
      [0, 100, 200, 400],
    );
    assert.equal(detected[3]?.manager, 'other-controller');
  });

  it('secret-values-are-redacted-in-drift-events', async () => {
    const secret: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'creds', namespace: 'd7' },
      stringData: { password: 'hunter2' },
    };
    const { rec } = await enforce([{ name: 'd7', objects: [ns('d7'), secret] }]);
    await patch('/api/v1/namespaces/d7/secrets/creds', {
      data: { password: Buffer.from('leaked').toString('base64') },
    });
    await until(() => rec.of('drift-corrected').length > 0, 'heal');
    const text = JSON.stringify(rec.events);
    assert.doesNotMatch(text, /hunter2|leaked|bGVha2Vk|aHVudGVyMg/);
    assert.match(text, /<redacted>/);
  });

  it('bundle-health-follows-status-writes', async () => {
    const job: KubeObject = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'migrate', namespace: 'h1' },
      spec: {
        template: {
          spec: { restartPolicy: 'Never', containers: [{ name: 'm', image: 'busybox' }] },
        },
      },
    };
    const { rec } = await enforce([
      { name: 'h-app', objects: [ns('h1'), deployment('h1', 'api')] },
      { name: 'h-job', objects: [job] },
    ]);
    const healthOf = (bundle: string): HealthChangedData | undefined =>
      rec.of<HealthChangedData>('health-changed', (d) => d.bundle === bundle).pop();
    await until(() => healthOf('h-app')?.state === 'Progressing', 'app progressing');
    const dep = await kube.get({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      namespace: 'h1',
      name: 'api',
    });
    // No controllers run here: play the Deployment controller by writing status.
    await kube.request({
      method: 'PATCH',
      path: '/apis/apps/v1/namespaces/h1/deployments/api/status',
      contentType: 'application/merge-patch+json',
      body: {
        status: {
          observedGeneration: dep?.metadata.generation,
          replicas: 1,
          updatedReplicas: 1,
          readyReplicas: 1,
          availableReplicas: 1,
        },
      },
    });
    await until(() => healthOf('h-app')?.state === 'Ready', 'app ready');
    assert.equal(healthOf('h-app')?.previous, 'Progressing');
    await kube.request({
      method: 'PATCH',
      path: '/apis/batch/v1/namespaces/h1/jobs/migrate/status',
      contentType: 'application/merge-patch+json',
      body: {
        status: {
          startTime: new Date().toISOString(),
          failed: 1,
          conditions: [
            {
              type: 'FailureTarget',
              status: 'True',
              reason: 'BackoffLimitExceeded',
              message: 'Job has reached the specified backoff limit',
            },
            {
              type: 'Failed',
              status: 'True',
              reason: 'BackoffLimitExceeded',
              message: 'Job has reached the specified backoff limit',
            },
          ],
        },
      },
    });
    await until(() => healthOf('h-job')?.state === 'Degraded', 'job degraded');
    assert.match(healthOf('h-job')?.reasons[0] ?? '', /backoff limit/);
    // A status write is not drift.
    assert.equal(rec.of('drift-detected').length, 0);
  });
});
