// `flotilla wait --healthy` as a rollout gate, on real parts: kube-apiservers, NATS, a Git
// server, the hub and an agent per cluster. A bare API server runs no controllers, so a
// ConfigMap-only bundle is Ready as soon as it exists while a Deployment stays Progressing
// until the test writes its status subresource, playing the Deployment controller.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { AppsV1Api, KubeConfig } from '@kubernetes/client-node';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const cluster = (name: string, shape: string): string =>
  `apiVersion: flotilla.dev/v1alpha1
kind: Cluster
metadata:
  name: ${name}
  labels:
    shape: ${shape}
`;

const bundle = (name: string, selector: string): string =>
  `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: ${name}
spec:
  source:
    path: manifests
  namespace: ${name}
  targets:
    - clusterSelector: ${selector}
`;

const namespace = (name: string): string =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;

const settings = (message: string): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  message: ${message}\n`;

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

let fleet: Fleet | undefined;
const skip = await requireEnv(['cluster', 'nats', 'git']);

before(async () => {
  if (skip) return;
  fleet = await startFleet({
    clusters: ['plain', 'busy'],
    insecure: true,
    repoFiles: {
      'clusters/plain.yaml': cluster('plain', 'config-only'),
      'clusters/busy.yaml': cluster('busy', 'workloads'),
      'bundles/config/bundle.yaml': bundle('config', '{}'),
      'bundles/config/manifests/namespace.yaml': namespace('config'),
      'bundles/config/manifests/settings.yaml': settings('first'),
      'bundles/web/bundle.yaml': bundle('web', '{ matchLabels: { shape: workloads } }'),
      'bundles/web/manifests/namespace.yaml': namespace('web'),
      'bundles/web/manifests/deployment.yaml': deployment('registry.example/web:1'),
    },
  });
});

after(async () => {
  await fleet?.stop();
});

// Writes what the Deployment controller would once the rollout is done.
async function rollOut(f: Fleet, clusterName: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(f.clusters.get(clusterName)!.kubeconfigPath);
  const apps = kc.makeApiClient(AppsV1Api);
  const d = await apps.readNamespacedDeployment({ name: 'web', namespace: 'web' });
  d.status = {
    observedGeneration: d.metadata?.generation ?? 1,
    replicas: 1,
    updatedReplicas: 1,
    readyReplicas: 1,
    availableReplicas: 1,
    conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
  };
  await apps.replaceNamespacedDeploymentStatus({ name: 'web', namespace: 'web', body: d });
}

const waitHealthy = (f: Fleet, sha: string, shape: string, timeout: string) =>
  f.cli([
    'wait',
    '--for',
    `revision=${sha}`,
    '--healthy',
    '-l',
    `shape=${shape}`,
    '--timeout',
    timeout,
  ]);

test(
  'wait-healthy-gates-on-workload-health-at-the-commit',
  { skip, timeout: 180_000 },
  async () => {
    const f = fleet!;
    await f.waitForRevision(f.firstCommit, 90_000);

    // A new commit that changes the ConfigMap: its bundle stays Ready, and is healthy at
    // the new commit only once the agent states it again for that revision.
    await f.repo.writeFiles({ 'bundles/config/manifests/settings.yaml': settings('second') });
    const second = await f.repo.commitAndPush('Second settings');
    assert.match(
      await waitHealthy(f, second, 'config-only', '60s'),
      new RegExp(`^1 cluster\\(s\\) Ready and healthy at ${second} \\(1 deployment\\(s\\)\\)\\n$`),
    );

    // The Deployment is applied, but nothing rolls it out: the gate stays closed.
    await f.waitForRevision(second, 60_000);
    await assert.rejects(waitHealthy(f, second, 'workloads', '5s'), (err: Error) => {
      assert.match(err.message, /waiting for revision \w+ to be healthy; not there yet:/);
      assert.match(
        err.message,
        /web on busy: Progressing \(apps\/Deployment\/web\/web: 0 of 1 replicas updated\)/,
      );
      assert.doesNotMatch(err.message, /config on busy/);
      return true;
    });

    // The "controller" finishes the rollout: the gate opens without a new commit.
    await rollOut(f, 'busy');
    assert.match(
      await waitHealthy(f, second, 'workloads', '60s'),
      /^1 cluster\(s\) Ready and healthy at \w+ \(2 deployment\(s\)\)\n$/,
    );

    // A commit that only changes the web bundle changes nothing on `plain`: no apply and
    // no new health event there, and it passes on the health stated for the content.
    await f.repo.writeFiles({
      'bundles/web/manifests/deployment.yaml': deployment('registry.example/web:2'),
    });
    const third = await f.repo.commitAndPush('Web 2');
    await waitFor(
      async () =>
        (await f.status()).every((r) => r.name !== 'plain' || r.desiredRevision === third),
      { what: `the hub rendering ${third}`, timeoutMs: 60_000, intervalMs: 250 },
    );
    assert.match(await waitHealthy(f, third, 'config-only', '30s'), /Ready and healthy at/);
    // On `busy` the new Deployment generation is not observed: Progressing again.
    await assert.rejects(
      waitHealthy(f, third, 'workloads', '5s'),
      /web on busy: Progressing \(apps\/Deployment\/web\/web: generation 2 not observed yet\)/,
    );
  },
);
