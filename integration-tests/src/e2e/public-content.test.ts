// Content shaped like what platform teams deploy, end to end on real parts (a
// kube-apiserver, NATS, Git over HTTP, the hub with the pinned helm and kustomize, an
// agent on the installer's credentials): a chart with a library chart, a values schema,
// a kubeVersion constraint, a generated password, scripts in a ConfigMap and a migration
// hook; the chart `helm create` makes; a Kustomize overlay over a shared base; operator
// CRDs of several MB with a custom resource beside them; and a custom resource whose CRD
// is not installed. What a user sees is checked: `flotilla status`, `get deployments`,
// `wait --healthy`, and the objects on the cluster. A bare API server runs no
// controllers: Deployments never become available, and the test plays the Job
// controller for the migration hook.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import {
  ApiextensionsV1Api,
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
} from '@kubernetes/client-node';
import { binaryPaths, requireEnv, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import { completeJob } from '../system/job-controller.js';
import type { Fleet } from '../system/fleet.js';
import {
  PUBLIC_FIXTURES,
  bundle,
  fixtureFiles,
  helmCreate,
  operatorBundleFiles,
} from './public-content.js';

const skip = await requireEnv(['cluster', 'nats', 'git']);

// About 0.5 MB of JSON each, 3 MB together.
const OPERATOR_KINDS = [
  'Gateway',
  'Alertmanager',
  'Prometheus',
  'ThanosRuler',
  'Probe',
  'PodMonitor',
];

const CERTIFICATE = `apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: shop-tls
spec:
  secretName: shop-tls
  dnsNames: [shop.example.com]
  issuerRef: { kind: ClusterIssuer, name: letsencrypt }
`;

let fleet: Fleet | undefined;
let stopJobs: (() => Promise<void>) | undefined;

before(async () => {
  if (skip) return;
  const repoFiles: Record<string, string> = {
    'clusters/edge.yaml':
      'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: edge\n  labels: { env: prod }\n',
    'bundles/webapp/bundle.yaml': bundle(
      'webapp',
      '    helm: { chart: chart, releaseName: shop }',
      'shop',
    ),
    ...(await fixtureFiles('webapp', 'bundles/webapp')),
    ...(await fixtureFiles('platform/base', 'platform/base')),
    'bundles/platform/bundle.yaml': bundle(
      'platform',
      '    kustomize: { path: overlay }',
      'platform-prod',
    ),
    ...(await fixtureFiles('platform/overlays/prod', 'bundles/platform/overlay')),
    'bundles/starter/bundle.yaml': bundle('starter', '    helm: { chart: chart }', 'starter'),
    ...(await helmCreate(binaryPaths().helm, 'starter', 'bundles/starter/chart')),
    'bundles/operator/bundle.yaml': bundle('operator', '    path: manifests', 'operators'),
    'bundles/operator/manifests/namespace.yaml':
      'apiVersion: v1\nkind: Namespace\nmetadata: { name: operators }\n',
    ...operatorBundleFiles(OPERATOR_KINDS, 'bundles/operator/manifests'),
    'bundles/certs/bundle.yaml': bundle('certs', '    path: manifests', 'shop'),
    'bundles/certs/manifests/certificate.yaml': CERTIFICATE,
  };
  fleet = await startFleet({ clusters: ['edge'], repoFiles });
});

after(async () => {
  await stopJobs?.();
  await fleet?.stop();
});

function clients(f: Fleet) {
  const kc = new KubeConfig();
  kc.loadFromFile(f.clusters.get('edge')!.kubeconfigPath);
  return {
    apps: kc.makeApiClient(AppsV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    core: kc.makeApiClient(CoreV1Api),
    crds: kc.makeApiClient(ApiextensionsV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
}

interface Row {
  bundle: string;
  state: string;
  reason?: string;
  waitingFor?: string;
}

async function deployments(f: Fleet): Promise<Map<string, Row>> {
  const out = JSON.parse(await f.cli(['get', 'deployments', '-o', 'json'])) as
    { deployments: Row[] } | Row[];
  const rows = Array.isArray(out) ? out : out.deployments;
  return new Map(rows.map((r) => [r.bundle, r]));
}

/**
 * Plays the Job controller in namespace shop until stopped: every Job there completes.
 * The chart's migration is a pre-install and pre-upgrade hook, and a re-render of the
 * chart (new cluster capabilities) is an upgrade: its hook runs again.
 */
function jobController(f: Fleet): () => Promise<void> {
  const { batch } = clients(f);
  let running = true;
  const loop = (async () => {
    while (running) {
      const jobs = await batch.listNamespacedJob({ namespace: 'shop' }).catch(() => undefined);
      for (const job of jobs?.items ?? [])
        if (!job.status?.completionTime && job.metadata?.name)
          await completeJob(batch, job.metadata.name, 'shop').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

const secretPassword = async (f: Fleet): Promise<string | undefined> =>
  (await clients(f).core.readNamespacedSecret({ name: 'shop-webapp', namespace: 'shop' })).data
    ?.password;

let passwordAtInstall: string | undefined;

test(
  'public-shaped-content-deploys-and-status-names-what-did-not-apply',
  { skip, timeout: 240_000 },
  async () => {
    const f = fleet!;
    const { apps, batch, core, crds, custom } = clients(f);
    const wait = { timeoutMs: 120_000, intervalMs: 250 };

    // The chart's migration runs first (pre-install hook): the test completes it.
    await waitFor(
      () =>
        batch.readNamespacedJob({ name: 'shop-webapp-migrate', namespace: 'shop' }).then(
          () => true,
          () => false,
        ),
      { ...wait, what: `the webapp's pre-install hook Job (logs in ${f.logDir})` },
    );
    stopJobs = jobController(f);

    // Everything applies except the Certificate, whose CRD (cert-manager) is not there.
    let last: Map<string, Row> = new Map();
    const rows = await waitFor(
      async () => {
        const r = (last = await deployments(f));
        const ready = ['webapp', 'platform', 'starter', 'operator'].every(
          (b) => r.get(b)?.state === 'Ready',
        );
        return ready && r.get('certs')?.state === 'Failed' ? r : false;
      },
      {
        ...wait,
        what: `four bundles Ready and certs Failed (logs in ${f.logDir})`,
      },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${JSON.stringify([...last.values()])}`);
    });
    assert.match(rows.get('certs')?.reason ?? '', /Certificate/);
    assert.match(rows.get('certs')?.reason ?? '', /cert-manager\.io\/v1/);
    // The cluster is not Ready while one of its bundles did not get through.
    const [edge] = await f.status();
    assert.notEqual(edge?.state, 'Ready');
    assert.match(JSON.stringify(edge), /certs/);
    // Nothing is healthy that is not: no controller rolls the Deployments out.
    await assert.rejects(
      f.cli(['wait', '--for', `revision=${f.firstCommit}`, '--healthy', '--timeout', '3s']),
      (err: Error) => {
        assert.match(err.message, /not there yet/);
        return true;
      },
    );

    // The chart: scripts byte for byte (tabs, ${...}, $(...), a "---" line), mode 0755.
    const scripts = await core.readNamespacedConfigMap({
      name: 'shop-webapp-scripts',
      namespace: 'shop',
    });
    const entrypoint = await readFile(
      `${PUBLIC_FIXTURES}/webapp/chart/files/entrypoint.sh`,
      'utf8',
    );
    assert.equal(scripts.data?.['entrypoint.sh'], entrypoint.replace(/\n$/, ''));
    const web = await apps.readNamespacedDeployment({ name: 'shop-webapp', namespace: 'shop' });
    assert.equal(web.spec?.template.spec?.volumes?.[0]?.configMap?.defaultMode, 0o755);
    assert.equal(
      web.spec?.template.spec?.containers[0]?.readinessProbe?.periodSeconds,
      10,
      'the readiness probe merges the liveness probe (<<: *probe)',
    );
    await core.readNamespacedSecret({ name: 'shop-webapp', namespace: 'shop' });
    await apps.readNamespacedDeployment({ name: 'starter', namespace: 'starter' });
    passwordAtInstall = await secretPassword(f);
    assert.ok(passwordAtInstall);
    // Test hooks are skipped, as `helm template --skip-tests`.
    await assert.rejects(
      core.readNamespacedPod({ name: 'shop-webapp-test-connection', namespace: 'shop' }),
    );

    // The Kustomize overlay over the shared base: prefix, hashed ConfigMap names, modes.
    const gateway = await apps.readNamespacedDeployment({
      name: 'prod-gateway',
      namespace: 'platform-prod',
    });
    assert.equal(gateway.spec?.replicas, 3);
    const volume = gateway.spec?.template.spec?.volumes?.[0]?.configMap;
    assert.equal(volume?.defaultMode, 0o755);
    assert.match(volume?.name ?? '', /^prod-gateway-scripts-[a-z0-9]+$/);
    const logs = await batch.readNamespacedCronJob({
      name: 'prod-gateway-logs',
      namespace: 'platform-prod',
    });
    assert.equal(
      logs.spec?.jobTemplate.spec?.template.spec?.volumes?.[0]?.configMap?.defaultMode,
      0o744,
    );

    // Operator CRDs of several MB and a custom resource applied with them.
    for (const kind of OPERATOR_KINDS)
      await crds.readCustomResourceDefinition({
        name: `${kind.toLowerCase()}s.platform.example.com`,
      });
    const gw = (await custom.getNamespacedCustomObject({
      group: 'platform.example.com',
      version: 'v1',
      namespace: 'operators',
      plural: 'gateways',
      name: 'edge',
    })) as { spec?: { replicas?: number } };
    assert.equal(gw.spec?.replicas, 2);
  },
);

test(
  'without-the-failing-bundle-the-cluster-is-ready-and-a-hub-restart-changes-nothing',
  { skip, timeout: 240_000 },
  async () => {
    const f = fleet!;
    const removed = await f.repo.commitAndPush('certs: cert-manager is not installed here', {
      'bundles/certs': null,
    });
    const [before] = await f.waitForRevision(removed, 120_000);
    assert.equal(before?.state, 'Ready');

    // A restarted hub renders the same commit again: the chart's generated password and
    // the desired state must stay what the cluster runs (no new digest, no upgrade hook).
    await f.restartHub();
    await waitFor(
      async () => (await readFile(f.hub.logFile, 'utf8')).includes('"rendered fleet"'),
      { what: `the restarted hub's render (log ${f.hub.logFile})`, timeoutMs: 60_000 },
    );
    const [after] = await f.waitForRevision(removed, 120_000);
    assert.equal(after?.appliedDigest, before?.appliedDigest);
    assert.equal(await secretPassword(f), passwordAtInstall);
  },
);
