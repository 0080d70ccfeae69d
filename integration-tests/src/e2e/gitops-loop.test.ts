// The walking skeleton end to end, as real processes: two kube-apiservers, NATS, a Git
// server, a hub and two agents. Two commits must each reach both clusters, and
// `flotilla status` must report both clusters at the newest commit.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const CLUSTERS = ['alpha', 'beta'];

function cluster(name: string, env: string): string {
  return `apiVersion: flotilla.dev/v1alpha1
kind: Cluster
metadata:
  name: ${name}
  labels:
    env: ${env}
`;
}

const BUNDLE = `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: app
spec:
  source:
    path: manifests
  namespace: app
  substitute: true
  targets:
    - clusterSelector:
        matchLabels:
          env: prod
      vars:
        tier: gold
    - clusterSelector: {}
      vars:
        tier: bronze
`;

function appConfig(message: string): string {
  return `apiVersion: v1
kind: ConfigMap
metadata:
  name: app-config
data:
  message: ${message}
  cluster: \${cluster.name}
  tier: \${vars.tier}
`;
}

const NAMESPACE = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n';
const configMap = (name: string): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  k: v\n`;

let fleet: Fleet | undefined;
const skip = await requireEnv(['cluster', 'nats', 'git']);

function core(name: string): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(fleet!.clusters.get(name)!.kubeconfigPath);
  return kc.makeApiClient(CoreV1Api);
}

async function configMapData(
  api: CoreV1Api,
  name: string,
): Promise<Record<string, string> | undefined> {
  try {
    const cm = await api.readNamespacedConfigMap({ name, namespace: 'app' });
    return cm.data ?? {};
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

before(async () => {
  if (skip) return;
  fleet = await startFleet({
    clusters: CLUSTERS,
    repoFiles: {
      'clusters/alpha.yaml': cluster('alpha', 'prod'),
      'clusters/beta.yaml': cluster('beta', 'dev'),
      'bundles/app/bundle.yaml': BUNDLE,
      'bundles/app/manifests/namespace.yaml': NAMESPACE,
      'bundles/app/manifests/config.yaml': appConfig('first'),
      'bundles/app/manifests/obsolete.yaml': configMap('obsolete'),
    },
  });
});

after(async () => {
  await fleet?.stop();
});

test(
  'commits-reach-every-cluster-and-status-reports-the-newest-sha',
  { skip, timeout: 240_000 },
  async () => {
    const f = fleet!;
    // Commit 1: both clusters get the bundle, rendered for each cluster.
    for (const name of CLUSTERS) {
      const api = core(name);
      const data = await waitFor(
        async () => {
          const d = await configMapData(api, 'app-config');
          return d?.message === 'first' ? d : undefined;
        },
        {
          what: `app-config at the first commit in ${name} (logs in ${f.logDir})`,
          timeoutMs: 90_000,
          intervalMs: 250,
        },
      );
      assert.deepEqual(data, {
        message: 'first',
        cluster: name,
        tier: name === 'alpha' ? 'gold' : 'bronze',
      });
      assert.ok(await configMapData(api, 'obsolete'), `obsolete exists in ${name}`);
    }
    const atFirst = await f.waitForRevision(f.firstCommit);
    assert.deepEqual(atFirst.map((r) => r.name).sort(), CLUSTERS);

    // Commit 2: a changed object, an added one, a removed one — with no restarts.
    await f.repo.writeFiles({
      'bundles/app/manifests/config.yaml': appConfig('second'),
      'bundles/app/manifests/added.yaml': configMap('added'),
    });
    await f.repo.remove(['bundles/app/manifests/obsolete.yaml']);
    const second = await f.repo.commitAndPush('Second revision');
    assert.notEqual(second, f.firstCommit);

    for (const name of CLUSTERS) {
      const api = core(name);
      await waitFor(
        async () =>
          (await configMapData(api, 'app-config'))?.message === 'second' &&
          (await configMapData(api, 'added')) !== undefined &&
          (await configMapData(api, 'obsolete')) === undefined,
        {
          what: `objects of the second commit in ${name} (logs in ${f.logDir})`,
          timeoutMs: 60_000,
          intervalMs: 250,
        },
      );
    }
    const rows = await f.waitForRevision(second);
    for (const name of CLUSTERS) {
      const row = rows.find((r) => r.name === name);
      assert.equal(row?.appliedRevision, second, `${name} applied revision`);
      assert.equal(row?.state, 'Ready');
      assert.equal(row?.connected, true);
    }
    for (const proc of [...f.agents.values(), f.hub])
      assert.equal(proc.isRunning(), true, `${proc.name} still running`);
  },
);

test('hub-and-agents-reach-nats-only-over-tls', { skip, timeout: 60_000 }, async () => {
  const f = fleet!;
  type Conn = { name?: string; tls_version?: string; tls_cipher_suite?: string };
  // The server's own view of every client connection (nats-server /connz).
  const conns = await waitFor(
    async () => {
      const res = await fetch(`${f.nats.monitorUrl}/connz`);
      const list = ((await res.json()) as { connections?: Conn[] }).connections ?? [];
      const names = new Set(list.map((c) => c.name));
      return ['flotilla-hub', ...CLUSTERS.map((c) => `flotilla-agent-${c}`)].every((n) =>
        names.has(n),
      )
        ? list
        : undefined;
    },
    { what: 'the hub and every agent connected to NATS', timeoutMs: 30_000 },
  );
  for (const c of conns)
    assert.ok(c.tls_version && c.tls_cipher_suite, `${c.name ?? 'a client'} is connected over TLS`);
});

test('hub-and-agents-stop-cleanly-on-sigterm', { skip, timeout: 60_000 }, async () => {
  const f = fleet!;
  for (const proc of [...f.agents.values(), f.hub]) {
    await proc.stop(15_000);
    assert.equal(await proc.exited, 0, `${proc.name} exit code (log ${proc.logFile})`);
  }
});
