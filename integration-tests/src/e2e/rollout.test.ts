// Progressive rollouts end to end, on real parts: three kube-apiservers (canary, eu-1,
// us-1), NATS, a Git server, the hub with TLS and identities, and an agent per cluster.
// A bare API server runs no controllers, so workload health comes from the Deployment's
// status subresource, written by the test playing the Deployment controller (as the
// wait-healthy tests do): a good image becomes available, a broken one never does.
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

const bundle = (rollout: { deadline: string; onFailure: string }): string =>
  `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: web
spec:
  namespace: web
  targets:
    - clusterSelector: {}
  rollout:
    progressDeadline: ${rollout.deadline}
    onFailure: ${rollout.onFailure}
    stages:
      - name: canary
        clusterNames: [canary]
        soak: 5s
      - name: eu
        clusterSelector: { matchLabels: { region: eu } }
      - name: us
        clusterSelector: { matchLabels: { region: us } }
        approval: required
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

interface RolloutJson {
  id: string;
  revision: string;
  phase: string;
  reason: string;
  stages: { name: string; state: string; soakRemainingMs: number; approvedBy: string }[];
  clusters: { name: string; phase: string }[];
}

interface HistoryJson {
  entries: {
    timeMs: number;
    cluster: string;
    message: string;
    rollout: { id: string; from: string; to: string; stage: number };
  }[];
}

let fleet: Fleet | undefined;
let controller: DeploymentController | undefined;
const skip = await requireEnv(['cluster', 'nats', 'git']);

before(async () => {
  if (skip) return;
  fleet = await startFleet({
    clusters: ['canary', 'eu-1', 'us-1'],
    repoFiles: {
      'clusters/canary.yaml': cluster('canary', { ring: 'canary', region: 'eu' }),
      'clusters/eu-1.yaml': cluster('eu-1', { ring: 'prod', region: 'eu' }),
      'clusters/us-1.yaml': cluster('us-1', { ring: 'prod', region: 'us' }),
      'bundles/web/bundle.yaml': bundle({ deadline: '2m', onFailure: 'halt' }),
      'bundles/web/manifests/namespace.yaml': NAMESPACE,
      'bundles/web/manifests/deployment.yaml': deployment('registry.example/web:1'),
    },
  });
  controller = playDeploymentController({
    clusters: new Map([...fleet.clusters].map(([n, c]) => [n, c.kubeconfigPath])),
    namespace: 'web',
    name: 'web',
    available: (image) => !image.includes('broken'),
  });
});

after(async () => {
  await controller?.stop();
  await fleet?.stop();
});

async function rollout(f: Fleet): Promise<RolloutJson | undefined> {
  try {
    return JSON.parse(await f.cli(['rollout', 'status', 'web', '-o', 'json'])) as RolloutJson;
  } catch (err) {
    if (/404/.test((err as Error).message)) return undefined;
    throw err;
  }
}

async function history(f: Fleet, rolloutId: string): Promise<HistoryJson['entries']> {
  const h = JSON.parse(await f.cli(['rollout', 'history', 'web', '-o', 'json'])) as HistoryJson;
  return h.entries.filter((e) => e.rollout.id === rolloutId).reverse();
}

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

const phaseOf = (r: RolloutJson | undefined, c: string): string | undefined =>
  r?.clusters.find((x) => x.name === c)?.phase;

async function until<T>(
  what: string,
  f: () => Promise<T | false | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  return waitFor(async () => (await f()) ?? false, { what, timeoutMs, intervalMs: 500 });
}

test(
  'a-good-commit-goes-through-three-stages-with-soak-and-approval-in-order-and-completes',
  { skip, timeout: 600_000 },
  async () => {
    const f = fleet!;
    await f.waitForRevision(f.firstCommit, 180_000);
    await f.repo.writeFiles({
      'bundles/web/manifests/deployment.yaml': deployment('registry.example/web:2'),
    });
    const second = await f.repo.commitAndPush('web 2');

    // The canary stage soaks once the canary is healthy at the new revision; meanwhile
    // eu-1 has not been given it, and status says it is held by the rollout.
    const soaking = await until('the canary stage soaking', async () => {
      const r = await rollout(f);
      return r?.revision === second && r.stages[0]?.state === 'Soaking' ? r : undefined;
    });
    assert.equal(phaseOf(soaking, 'canary'), 'Healthy');
    assert.equal(phaseOf(soaking, 'eu-1'), 'Waiting');
    const eu = (await f.status()).find((c) => c.name === 'eu-1');
    assert.equal(eu?.state, 'Waiting');
    assert.match(
      String(eu?.message),
      new RegExp(`bundle web held by rollout ${soaking.id}: waits for stage 2/3 \\(eu\\)`),
    );

    // The us stage waits for a person; `wait --for revision` says who holds us-1 back.
    const awaiting = await until('the us stage awaiting approval', async () => {
      const r = await rollout(f);
      return r?.phase === 'AwaitingApproval' ? r : undefined;
    });
    assert.deepEqual(
      awaiting.stages.map((s) => s.state),
      ['Completed', 'Completed', 'AwaitingApproval'],
    );
    assert.equal((await deploymentOn(f, 'us-1')).image, 'registry.example/web:1');
    await assert.rejects(
      f.cli(['wait', '--for', `revision=${second}`, '--timeout', '3s']),
      new RegExp(
        `us-1: Waiting at \\w+ \\(bundle web held by rollout ${awaiting.id}: stage 3/3 \\(us\\) waits for approval; serving ${f.firstCommit.slice(0, 12)}\\)`,
      ),
    );

    assert.match(
      await f.cli(['rollout', 'approve', 'web', '--revision', second.slice(0, 12)]),
      new RegExp(`rollout ${awaiting.id}: approve done; now Progressing`),
    );
    assert.match(
      await f.cli(['wait', '--for', `rollout=web@${second}`, '--timeout', '3m']),
      new RegExp(`rollout ${awaiting.id} Completed`),
    );
    for (const c of ['canary', 'eu-1', 'us-1'])
      assert.equal((await deploymentOn(f, c)).image, 'registry.example/web:2', c);
    await f.waitForRevision(second, 60_000);

    // History: stages in order, each cluster started only after the stage before it
    // completed, the canary stage completed no earlier than its soak after it was healthy.
    const h = await history(f, awaiting.id);
    const at = (cluster: string, to: string): number =>
      h.find((e) => e.cluster === cluster && e.rollout.to === to)?.timeMs ?? NaN;
    const stage = (to: string): number[] =>
      h.filter((e) => e.cluster === '' && e.rollout.to === to).map((e) => e.rollout.stage);
    assert.deepEqual(stage('StageStarted'), [0, 1, 2]);
    assert.deepEqual(stage('StageCompleted'), [0, 1, 2]);
    const completed = (s: number): number =>
      h.find((e) => e.rollout.to === 'StageCompleted' && e.rollout.stage === s)?.timeMs ?? NaN;
    assert.ok(completed(0) - at('canary', 'Healthy') >= 5_000, 'the canary soaked 5 s');
    assert.ok(at('eu-1', 'Updating') >= completed(0), 'eu-1 started after the canary stage');
    assert.ok(at('us-1', 'Updating') >= completed(1), 'us-1 started after the eu stage');
    assert.ok(
      h.some((e) => e.rollout.to === 'Approved' && /approved by flotilla-admin/.test(e.message)),
    );
    // The same transitions are in `flotilla history`.
    const all = JSON.parse(
      await f.cli(['history', '--kind', 'rollout', '--bundle', 'web', '-o', 'json']),
    ) as HistoryJson;
    assert.ok(
      all.entries.some((e) => e.rollout.id === awaiting.id && e.rollout.to === 'Completed'),
    );
  },
);

test(
  'a-commit-that-never-becomes-available-halts-in-the-canary-and-rolls-back-before-reaching-later-stages',
  { skip, timeout: 600_000 },
  async () => {
    const f = fleet!;
    const before = {
      'eu-1': await deploymentOn(f, 'eu-1'),
      'us-1': await deploymentOn(f, 'us-1'),
    };
    await f.repo.writeFiles({
      'bundles/web/bundle.yaml': bundle({ deadline: '20s', onFailure: 'rollback' }),
      'bundles/web/manifests/deployment.yaml': deployment('registry.example/web:broken'),
    });
    const bad = await f.repo.commitAndPush('web broken');
    const good = 'registry.example/web:2';

    await assert.rejects(
      f.cli(['wait', '--for', `rollout=web@${bad}`, '--timeout', '4m']),
      new RegExp(
        `rollout of web at ${bad} did not complete: RolledBack: rolled back: stage 1/3 \\(canary\\): 1 of 1 clusters failed \\(0 tolerated\\); canary: bundle web not healthy at ${bad.slice(0, 12)} within 20s: Progressing \\(apps/Deployment/web/web: generation \\d+ not observed yet\\)`,
      ),
    );
    // The canary's objects are back to the previous revision, on its API server.
    await until('the canary running web:2 again', async () =>
      (await deploymentOn(f, 'canary')).image === good ? true : undefined,
    );
    // No later-stage cluster ever received the bad revision: same object, same generation.
    for (const c of ['eu-1', 'us-1'] as const)
      assert.deepEqual(await deploymentOn(f, c), before[c]);
    const r = await rollout(f);
    assert.equal(r?.revision, bad);
    const h = await history(f, r!.id);
    assert.deepEqual(
      h.filter((e) => e.rollout.to === 'Updating').map((e) => e.cluster),
      ['canary'],
    );
    // Status says plainly that the fleet runs an older revision than the head, and why.
    const canary = await until('the canary Waiting at the rolled back revision', async () => {
      const c = (await f.status()).find((x) => x.name === 'canary');
      return c?.state === 'Waiting' ? c : undefined;
    });
    assert.equal(canary.desiredRevision, bad);
    assert.match(
      String(canary.message),
      new RegExp(`held by rollout ${r!.id}: rolled back: .*; serving [0-9a-f]{12}`),
    );
  },
);
