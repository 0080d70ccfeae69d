// Bundle namespaces and dependsOn end to end, on real parts: a kube-apiserver, NATS, a Git
// server, the hub and an agent acting as its own ServiceAccount (the RBAC `flotilla
// cluster add` generates). A bare API server runs no controllers: the db Deployment stays
// Progressing until the test writes its status, as the Deployment controller would; and a
// deleted Namespace stays Terminating (no namespace controller finalizes it).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { credentials } from '@grpc/grpc-js';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { loadFlotillaProto } from '@flotilla/proto';
import type { BundleDeploymentMessage } from '@flotilla/proto';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const CLUSTER = `apiVersion: flotilla.dev/v1alpha1
kind: Cluster
metadata:
  name: c1
`;

const bundle = (name: string, extra: string): string => `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: ${name}
spec:
  source:
    path: manifests
  namespace: ${name}
${extra}  targets:
    - clusterSelector: {}
`;

const DB = bundle('db', '  namespaceLabels: { team: data }\n');
const APP = bundle('app', '  dependsOn: [db]\n');

const DEPLOYMENT = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: db
spec:
  replicas: 1
  selector:
    matchLabels: { app: db }
  template:
    metadata:
      labels: { app: db }
    spec:
      containers:
        - name: db
          image: registry.example/db:1
`;

const SETTINGS = `apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data:
  message: hello
`;

let fleet: Fleet | undefined;
const skip = await requireEnv(['cluster', 'nats', 'git']);

before(async () => {
  if (skip) return;
  fleet = await startFleet({
    clusters: ['c1'],
    insecure: true,
    repoFiles: {
      'clusters/c1.yaml': CLUSTER,
      'bundles/db/bundle.yaml': DB,
      'bundles/db/manifests/deployment.yaml': DEPLOYMENT,
      'bundles/app/bundle.yaml': APP,
      'bundles/app/manifests/settings.yaml': SETTINGS,
    },
  });
});

after(async () => {
  await fleet?.stop();
});

interface Row {
  bundle: string;
  state: string;
  reason: string;
  waitingFor?: string;
}

async function deployments(f: Fleet): Promise<Map<string, Row>> {
  const out = JSON.parse(await f.cli(['get', 'deployments', '-o', 'json'])) as {
    deployments: Row[];
  };
  return new Map(out.deployments.map((d) => [d.bundle, d]));
}

function grpcDeployments(f: Fleet): Promise<BundleDeploymentMessage[]> {
  const { FleetService } = loadFlotillaProto();
  const client = new FleetService(f.hubGrpcAddress, credentials.createInsecure()) as unknown as {
    ListDeployments(
      req: object,
      cb: (err: Error | null, res?: { deployments: BundleDeploymentMessage[] }) => void,
    ): void;
    close(): void;
  };
  return new Promise((resolve, reject) =>
    client.ListDeployments({}, (err, res) => {
      client.close();
      if (err) reject(err);
      else resolve(res?.deployments ?? []);
    }),
  );
}

const gone = async (read: () => Promise<unknown>): Promise<boolean> =>
  read().then(
    () => false,
    (err: { code?: number }) => err.code === 404,
  );

test(
  'namespaces-are-created-and-pruned-and-dependsOn-orders-two-bundles',
  { skip, timeout: 240_000 },
  async () => {
    const f = fleet!;
    const kc = new KubeConfig();
    kc.loadFromFile(f.clusters.get('c1')!.kubeconfigPath);
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const settings = () => core.readNamespacedConfigMap({ name: 'settings', namespace: 'app' });

    // db is applied into the namespace the agent created, with its labels; app waits for
    // db to be healthy: nothing of it exists yet, not even its namespace. (Right after db's
    // apply the reason is "not applied at its current version yet"; once the agent knows
    // db's health it says that.)
    const waiting = await waitFor(
      async () => {
        const d = (await deployments(f)).get('app');
        return d?.state === 'Waiting' && d.reason.includes('Progressing') ? d : false;
      },
      { what: 'app Waiting for db, Progressing', timeoutMs: 90_000, intervalMs: 250 },
    );
    assert.equal(waiting.waitingFor, 'db');
    assert.match(
      waiting.reason,
      /^waiting for bundle db: Progressing \(apps\/Deployment\/db\/db: 0 of 1 replicas updated\)$/,
    );
    const viaGrpc = (await grpcDeployments(f)).find((d) => d.bundle === 'app');
    assert.deepEqual([viaGrpc?.state, viaGrpc?.waitingFor], ['Waiting', 'db']);
    assert.match(
      await f.cli(['get', 'deployments', '-o', 'wide']),
      /app\s+c1\s+Waiting\s.*waiting for bundle db: Progressing/,
    );
    const [cluster] = await f.status();
    assert.equal(cluster?.state, 'Progressing');
    const dbNs = await core.readNamespace({ name: 'db' });
    assert.equal(dbNs.metadata?.labels?.team, 'data');
    assert.equal(dbNs.metadata?.annotations?.['flotilla.dev/created-by-bundle'], 'db');
    assert.ok(await gone(() => core.readNamespace({ name: 'app' })));
    assert.ok(await gone(settings));

    // The "Deployment controller" rolls db out: app follows, without a new commit.
    const d = await apps.readNamespacedDeployment({ name: 'db', namespace: 'db' });
    d.status = {
      observedGeneration: d.metadata?.generation ?? 1,
      replicas: 1,
      updatedReplicas: 1,
      readyReplicas: 1,
      availableReplicas: 1,
      conditions: [{ type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' }],
    };
    await apps.replaceNamespacedDeploymentStatus({ name: 'db', namespace: 'db', body: d });
    await f.waitForRevision(f.firstCommit, 60_000);
    assert.equal((await settings()).data?.message, 'hello');
    assert.equal((await deployments(f)).get('app')?.state, 'Ready');

    // A cycle is a render error naming file and line; the cluster keeps what it runs.
    await f.repo.writeFiles({
      'bundles/db/bundle.yaml': bundle(
        'db',
        '  namespaceLabels: { team: data }\n  dependsOn: [app]\n',
      ),
    });
    const cycle = await f.repo.commitAndPush('db depends on app');
    const error = await waitFor(
      async () => {
        const res = await fetch(`${f.hubHttpUrl}/api/v1/sources`);
        const body = (await res.json()) as {
          sources: { renderedRevision: string; error?: string }[];
        };
        const s = body.sources[0];
        return s?.renderedRevision === cycle ? (s.error ?? '') : false;
      },
      { what: `the hub rendering ${cycle}`, timeoutMs: 60_000, intervalMs: 250 },
    );
    assert.match(
      error,
      /bundles\/app\/bundle\.yaml:9: spec\.dependsOn\[0\]: dependency cycle: app → db → app/,
    );
    assert.match(
      error,
      /bundles\/db\/bundle\.yaml:10: spec\.dependsOn\[0\]: dependency cycle: app → db → app/,
    );
    // Status says so per deployment (render failures are Failed with file:line), and the
    // cluster keeps running what it had.
    const failed = await waitFor(
      async () => {
        const rows = await deployments(f);
        return rows.get('app')?.state === 'Failed' && rows.get('db')?.state === 'Failed'
          ? rows
          : false;
      },
      { what: 'app and db Failed in status', timeoutMs: 30_000, intervalMs: 250 },
    );
    assert.match(
      failed.get('app')?.reason ?? '',
      /failed to render: bundles\/app\/bundle\.yaml:9: spec\.dependsOn\[0\]: dependency cycle: app → db → app/,
    );
    assert.equal((await settings()).data?.message, 'hello');

    // app leaves the fleet: its objects go, and so does the namespace it created, now
    // empty. db's namespace stays.
    await f.repo.remove(['bundles/app']);
    await f.repo.writeFiles({ 'bundles/db/bundle.yaml': DB });
    const last = await f.repo.commitAndPush('Remove app');
    await f.waitForRevision(last, 60_000);
    assert.ok(await gone(settings));
    const appNs = await core.readNamespace({ name: 'app' }).catch(() => undefined);
    assert.ok(appNs === undefined || appNs.metadata?.deletionTimestamp !== undefined);
    assert.equal((await core.readNamespace({ name: 'db' })).metadata?.deletionTimestamp, undefined);
  },
);
