// Rollouts under the things that break them elsewhere, on real parts: three declared
// kube-apiservers (canary, eu-1, us-1) plus late-1, whose agent runs before Git declares
// it; NATS; a Git server; the hub (TLS, identities). Health comes from the Deployment's
// status subresource, written by the test playing the Deployment controller, and only
// for the clusters the test releases: so a stage can be held mid-way on purpose. One
// scenario in steps, each a test: stale health cannot promote a stage; a cluster added
// mid-rollout joins it; a SIGKILLed hub resumes without updating anyone twice; a newer
// commit supersedes the rollout without double updates.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { playDeploymentController } from '../system/deployment-controller.js';
import type { DeploymentController } from '../system/deployment-controller.js';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const cluster = (name: string, labels: Record<string, string>): string =>
  `apiVersion: flotilla.dev/v1alpha1
kind: Cluster
metadata:
  name: ${name}
  labels: ${JSON.stringify(labels)}
`;

const BUNDLE = `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: web
spec:
  namespace: web
  targets:
    - clusterSelector: {}
  rollout:
    progressDeadline: 10m
    stages:
      - name: canary
        clusterNames: [canary]
      - name: prod
        clusterSelector: { matchLabels: { ring: prod } }
        maxConcurrent: 1
`;

const deployment = (image: string): string => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: { app: web }
  template:
    metadata:
      labels: { app: web }
    spec:
      containers:
        - name: web
          image: ${image}
`;

const NAMESPACE = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n';
const DECLARED = ['canary', 'eu-1', 'us-1'];

interface RolloutJson {
  id: string;
  revision: string;
  phase: string;
  stage: number;
  clusters: { name: string; phase: string }[];
}

interface DeploymentRow {
  bundle: string;
  cluster: string;
  state: string;
  health: string;
  healthDigest: string;
  desiredDigest: string;
  appliedDigest: string;
  reason: string;
}

let fleet: Fleet | undefined;
let controller: DeploymentController | undefined;
/** Clusters whose Deployment the fake controller makes available (per image). */
const released = new Set<string>();
const skip = await requireEnv(['cluster', 'nats', 'git']);

before(async () => {
  if (skip) return;
  fleet = await startFleet({
    clusters: [...DECLARED, 'late-1'],
    repoFiles: {
      'clusters/canary.yaml': cluster('canary', { ring: 'canary' }),
      'clusters/eu-1.yaml': cluster('eu-1', { ring: 'prod' }),
      'clusters/us-1.yaml': cluster('us-1', { ring: 'prod' }),
      'bundles/web/bundle.yaml': BUNDLE,
      'bundles/web/manifests/namespace.yaml': NAMESPACE,
      'bundles/web/manifests/deployment.yaml': deployment('registry.example/web:1'),
    },
  });
  controller = playDeploymentController({
    clusters: new Map([...fleet.clusters].map(([n, c]) => [n, c.kubeconfigPath])),
    namespace: 'web',
    name: 'web',
    available: (image, c) => image.endsWith(':1') || released.has(`${c} ${image}`),
  });
});

after(async () => {
  await controller?.stop();
  await fleet?.stop();
});

const release = (c: string, version: number): void => {
  released.add(`${c} registry.example/web:${version}`);
};

async function rollout(f: Fleet): Promise<RolloutJson> {
  return JSON.parse(await f.cli(['rollout', 'status', 'web', '-o', 'json'])) as RolloutJson;
}

const phases = (r: RolloutJson): Record<string, string> =>
  Object.fromEntries(r.clusters.map((c) => [c.name, c.phase]));

async function deploymentOn(
  f: Fleet,
  name: string,
): Promise<{ image: string; generation: number }> {
  const kc = new KubeConfig();
  kc.loadFromFile(f.clusters.get(name)!.kubeconfigPath);
  const d = await kc
    .makeApiClient(AppsV1Api)
    .readNamespacedDeployment({ name: 'web', namespace: 'web' });
  return {
    image: d.spec?.template.spec?.containers[0]?.image ?? '',
    generation: d.metadata?.generation ?? 0,
  };
}

async function until<T>(
  what: string,
  f: () => Promise<T | false | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  return waitFor(async () => (await f()) ?? false, { what, timeoutMs, intervalMs: 500 });
}

async function updatingTransitions(f: Fleet, id: string): Promise<string[]> {
  const h = JSON.parse(await f.cli(['rollout', 'history', 'web', '-o', 'json'])) as {
    entries: { cluster: string; rollout: { id: string; to: string } }[];
  };
  return h.entries
    .filter((e) => e.rollout.id === id && e.rollout.to === 'Updating')
    .map((e) => e.cluster)
    .sort();
}

test(
  'stale-health-from-the-old-revision-cannot-promote-the-canary-stage',
  { skip, timeout: 600_000 },
  async () => {
    const f = fleet!;
    await until(
      'the declared clusters Ready and healthy at the first commit',
      async () => {
        const rows = JSON.parse(
          await f.cli(['get', 'deployments', '--bundle', 'web', '-o', 'json']),
        ) as { deployments: DeploymentRow[] };
        return rows.deployments.filter((d) => d.state === 'Ready' && d.health === 'Ready')
          .length === DECLARED.length
          ? true
          : undefined;
      },
      240_000,
    );
    await f.repo.writeFiles({
      'bundles/web/manifests/deployment.yaml': deployment('registry.example/web:2'),
    });
    const second = await f.repo.commitAndPush('web 2');
    // Until the canary reports health about the new content, its last report says Ready
    // about the old one. Each look at the rollout must find eu-1 and us-1 not started.
    const canaryAtNew = await until('the canary reporting health at the new content', async () => {
      const r = await rollout(f).catch(() => undefined);
      if (r?.revision === second)
        for (const c of ['eu-1', 'us-1'])
          assert.equal(phases(r)[c], 'Waiting', `${c} was started on stale health`);
      const { deployments } = JSON.parse(
        await f.cli(['get', 'deployments', '--cluster', 'canary', '-o', 'json']),
      ) as { deployments: DeploymentRow[] };
      const d = deployments.find((x) => x.bundle === 'web');
      const status = (await f.status()).find((c) => c.name === 'canary');
      return d &&
        d.health !== '' &&
        d.healthDigest === status?.appliedDigest &&
        status.appliedDigest === status.desiredDigest &&
        r?.revision === second
        ? d
        : undefined;
    });
    assert.equal(canaryAtNew.health, 'Progressing');
    const r = await rollout(f);
    assert.equal(r.stage, 0);
    assert.deepEqual(phases(r), { canary: 'Updating', 'eu-1': 'Waiting', 'us-1': 'Waiting' });
    assert.equal((await deploymentOn(f, 'eu-1')).image, 'registry.example/web:1');
    // Healthy at the new content: now the prod stage starts (one at a time).
    release('canary', 2);
    const next = await until('the prod stage starting', async () => {
      const x = await rollout(f);
      return x.stage === 1 && phases(x)['eu-1'] === 'Updating' ? x : undefined;
    });
    assert.equal(phases(next)['us-1'], 'Waiting', 'maxConcurrent 1');
  },
);

test(
  'a-cluster-declared-mid-rollout-joins-its-stage-and-the-rollout-goes-on',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    const before = await rollout(f);
    await f.repo.writeFiles({ 'clusters/late-1.yaml': cluster('late-1', { ring: 'prod' }) });
    await f.repo.commitAndPush('declare late-1');
    const r = await until('late-1 in the rollout', async () => {
      const x = await rollout(f);
      return phases(x)['late-1'] ? x : undefined;
    });
    assert.equal(r.id, before.id, 'the same rollout: a new cluster does not abort it');
    assert.equal(r.phase, 'Progressing');
    assert.deepEqual(phases(r), {
      canary: 'Healthy',
      'eu-1': 'Updating',
      'late-1': 'Waiting',
      'us-1': 'Waiting',
    });
    const late = await until('late-1 Waiting in status', async () => {
      const c = (await f.status()).find((x) => x.name === 'late-1');
      return c?.state === 'Waiting' ? c : undefined;
    });
    assert.match(String(late.message), /bundle web held by rollout .*; not deployed here yet/);
  },
);

test(
  'a-sigkilled-hub-resumes-the-rollout-without-updating-any-cluster-twice',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    const before = await rollout(f);
    const generations = Object.fromEntries(
      await Promise.all(
        ['canary', 'eu-1', 'us-1'].map(async (c) => [c, (await deploymentOn(f, c)).generation]),
      ),
    );
    await f.restartHub({ kill: true });
    const after = await rollout(f);
    assert.equal(after.id, before.id);
    assert.deepEqual(phases(after), phases(before));
    // Agents reconnect to the new hub and get the same desired states: nothing re-applied.
    await until('every declared cluster connected again', async () =>
      (await f.status()).filter((c) => DECLARED.includes(c.name) && c.connected).length === 3
        ? true
        : undefined,
    );
    for (const c of ['canary', 'eu-1', 'us-1'])
      assert.equal((await deploymentOn(f, c)).generation, generations[c], `${c} untouched`);
    // And it goes on from where it was: eu-1 healthy → the next prod cluster starts.
    release('eu-1', 2);
    const next = await until('a second prod cluster starting', async () => {
      const x = await rollout(f);
      return phases(x)['eu-1'] === 'Healthy' && Object.values(phases(x)).includes('Updating')
        ? x
        : undefined;
    });
    assert.equal(next.id, before.id);
    // One start per cluster across the restart: nobody was started again, nobody skipped.
    const started = await updatingTransitions(f, before.id);
    assert.deepEqual(started, [...new Set(started)]);
    assert.deepEqual(
      started,
      Object.entries(phases(next))
        .filter(([, p]) => p !== 'Waiting')
        .map(([c]) => c)
        .sort(),
    );
  },
);

test(
  'a-newer-commit-supersedes-the-running-rollout-without-double-updates',
  { skip, timeout: 600_000 },
  async () => {
    const f = fleet!;
    const old = await rollout(f);
    const eu = await deploymentOn(f, 'eu-1');
    assert.equal(eu.image, 'registry.example/web:2');
    await f.repo.writeFiles({
      'bundles/web/manifests/deployment.yaml': deployment('registry.example/web:3'),
    });
    const third = await f.repo.commitAndPush('web 3');
    const r = await until('the rollout of the third commit', async () => {
      const x = await rollout(f);
      return x.revision === third ? x : undefined;
    });
    assert.notEqual(r.id, old.id);
    assert.equal(r.stage, 0, 'the new rollout starts from the first stage');
    const h = JSON.parse(await f.cli(['rollout', 'history', 'web', '-o', 'json'])) as {
      entries: { rollout: { id: string; to: string }; message: string }[];
    };
    assert.ok(
      h.entries.some(
        (e) =>
          e.rollout.id === old.id &&
          e.rollout.to === 'Superseded' &&
          e.message === `superseded by ${third.slice(0, 12)}`,
      ),
    );
    // eu-1 keeps web:2 (no step back to web:1) until its stage admits web:3.
    assert.deepEqual(await deploymentOn(f, 'eu-1'), eu);
    for (const c of ['canary', 'eu-1', 'us-1', 'late-1']) release(c, 3);
    await f.cli(['wait', '--for', `rollout=web@${third}`, '--timeout', '4m']);
    const done = await deploymentOn(f, 'eu-1');
    assert.equal(done.image, 'registry.example/web:3');
    assert.equal(done.generation, eu.generation + 1, 'eu-1 went web:2 → web:3 in one update');
    // us-1 was never admitted to the old rollout: web:1 → web:3 directly.
    const us = await deploymentOn(f, 'us-1');
    assert.equal(us.image, 'registry.example/web:3');
    assert.equal(us.generation, 2);
    assert.equal((await deploymentOn(f, 'late-1')).image, 'registry.example/web:3');
  },
);
