// More content shaped like what teams deploy, and things broken on purpose, end to end on
// real parts (a kube-apiserver, NATS, Git over HTTP, the hub with the pinned helm and
// kustomize, an agent on the credentials `flotilla cluster add` generates): an umbrella
// chart with one subchart under two aliases (condition, global values), `required`,
// `tpl`, `.Files.Get`, `lookup`, a pre-install and a post-upgrade hook; a chart whose
// `kubeVersion` excludes the cluster; Kustomize components, replacements, a
// configMapGenerator of shell scripts and patches chosen by label selector; a Deployment
// an admission webhook rejects; and RBAC the agent may not grant once the cluster's admin
// took `bind`/`escalate` from it (docs/install.md). What a user sees is checked:
// `flotilla get deployments`, `status`, `wait`, the HTTP API the page reads, and alerts.
import assert from 'node:assert/strict';
import { createServer as createHttpsServer } from 'node:https';
import { request } from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { after, before, test } from 'node:test';
import {
  AppsV1Api,
  BatchV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import { createTestCa, requireEnv, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import { applyManifests } from '../system/install.js';
import { completeJob } from '../system/job-controller.js';
import type { Fleet } from '../system/fleet.js';
import { startAlertReceiver } from '../system/alert-receiver.js';
import type { AlertReceiver } from '../system/alert-receiver.js';
import { bundle, fixtureFiles } from './public-content.js';

const skip = await requireEnv(['cluster', 'nats', 'git']);

// A team's workload from a registry the cluster's policy does not allow (the webhook
// below rejects it), beside a ConfigMap that is fine.
const GUARDED = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: worker
  labels: { policy.example.com/enforce: "true" }
spec:
  replicas: 1
  selector: { matchLabels: { app: worker } }
  template:
    metadata: { labels: { app: worker } }
    spec:
      containers:
        - { name: worker, image: docker.io/library/worker:latest }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: worker-settings }
data: { queue: orders }
`;

// RBAC shaped like an operator's: a ClusterRole with every verb and a binding to it.
const ACCESS = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: reports-operator }
rules:
  - { apiGroups: ["*"], resources: ["*"], verbs: ["*"] }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: reports-settings }
data: { schedule: "0 3 * * *" }
`;

interface Row {
  bundle: string;
  cluster: string;
  state: string;
  reason?: string;
  lastError?: string;
  waitingFor?: string;
}
interface Alert {
  kind: string;
  cluster?: string;
  bundle?: string;
  message: string;
}

let fleet: Fleet | undefined;
let receiver: AlertReceiver<Alert> | undefined;
let webhook: Server | undefined;
let jobsRunning = true;
let jobs: Promise<void> | undefined;
/** Hook Jobs the test completed, in order (hook-succeeded deletes them right after). */
const completed: string[] = [];

/** An admission webhook (as Kyverno or Gatekeeper would be): images only from registry.example.com. */
async function startPolicyWebhook(): Promise<{ url: string; caPem: string }> {
  const ca = createTestCa('policy-webhook-ca');
  const cert = ca.issueServer(['127.0.0.1']);
  webhook = createHttpsServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const review = JSON.parse(body) as {
        request: {
          uid: string;
          object?: { spec?: { template?: { spec?: { containers?: { image?: string }[] } } } };
        };
      };
      const images = (review.request.object?.spec?.template?.spec?.containers ?? []).map(
        (c) => c.image ?? '',
      );
      const bad = images.find((i) => !i.startsWith('registry.example.com/'));
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({
          apiVersion: 'admission.k8s.io/v1',
          kind: 'AdmissionReview',
          response: {
            uid: review.request.uid,
            allowed: bad === undefined,
            ...(bad === undefined
              ? {}
              : { status: { code: 403, message: `image ${bad} is not from an allowed registry` } }),
          },
        }),
      );
    });
  });
  await new Promise<void>((r) => webhook!.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(webhook.address() as AddressInfo).port}/validate`,
    caPem: ca.caPem,
  };
}

before(async () => {
  if (skip) return;
  receiver = await startAlertReceiver<Alert>();
  const hook = receiver.url;
  const legacyChart = await fixtureFiles('store/chart', 'bundles/legacy/chart');
  // The same chart, for an older platform: its constraint excludes this cluster (v1.35).
  legacyChart['bundles/legacy/chart/Chart.yaml'] = legacyChart[
    'bundles/legacy/chart/Chart.yaml'
  ]!.replace(/^kubeVersion: .*$/m, 'kubeVersion: ">=1.22.0-0 <1.30.0-0"');
  fleet = await startFleet({
    clusters: ['edge'],
    hubConfigExtra: [
      'notify:',
      '  webhooks:',
      '    - name: ops',
      `      url: ${hook}`,
      '      format: json',
    ],
    repoFiles: {
      'clusters/edge.yaml':
        'apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: edge\n  labels: { env: prod }\n',
      'bundles/store/bundle.yaml': bundle(
        'store',
        '    helm: { chart: chart, releaseName: shop, values: { image: { tag: "2.19.0" } } }',
        'store',
      ),
      ...(await fixtureFiles('store/chart', 'bundles/store/chart')),
      'bundles/legacy/bundle.yaml': bundle(
        'legacy',
        '    helm: { chart: chart, values: { image: { tag: "1.0.0" } } }',
        'legacy',
      ),
      ...legacyChart,
      ...(await fixtureFiles('edge/base', 'edge/base')),
      ...(await fixtureFiles('edge/components', 'edge/components')),
      'bundles/edge/bundle.yaml': bundle('edge', '    kustomize: { path: overlay }', 'edge'),
      ...(await fixtureFiles('edge/overlay', 'bundles/edge/overlay')),
    },
  });
  // Plays the Job controller for the store's hooks: every Job there completes.
  const kc = new KubeConfig();
  kc.loadFromFile(fleet.clusters.get('edge')!.kubeconfigPath);
  const batch = kc.makeApiClient(BatchV1Api);
  jobs = (async () => {
    while (jobsRunning) {
      const list = await batch.listNamespacedJob({ namespace: 'store' }).catch(() => undefined);
      for (const job of list?.items ?? [])
        if (!job.status?.completionTime && job.metadata?.name)
          await completeJob(batch, job.metadata.name, 'store').then(
            () => completed.push(job.metadata!.name!),
            () => undefined,
          );
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
});

after(async () => {
  jobsRunning = false;
  await jobs;
  await fleet?.stop();
  await receiver?.stop();
  await new Promise<void>((r) => (webhook ? webhook.close(() => r()) : r()));
});

function api<T>(f: Fleet, type: new (...args: never[]) => T): T {
  const kc = new KubeConfig();
  kc.loadFromFile(f.clusters.get('edge')!.kubeconfigPath);
  return kc.makeApiClient(type as never) as T;
}

async function deployments(f: Fleet): Promise<Map<string, Row>> {
  const out = JSON.parse(await f.cli(['get', 'deployments', '-o', 'json'])) as {
    deployments: Row[];
  };
  return new Map(out.deployments.map((r) => [r.bundle, r]));
}

/** GET on the hub's HTTP API, as the page does (with an API token). */
async function httpApi(f: Fleet, token: string, path: string): Promise<unknown> {
  const ca = await readFile(join(f.adminDir, 'ca.crt'));
  return new Promise((resolve, reject) => {
    const req = request(
      `${f.hubHttpUrl}${path}`,
      { ca, headers: { authorization: `Bearer ${token}` } },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve(JSON.parse(body)));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function until(
  f: Fleet,
  what: string,
  ok: (rows: Map<string, Row>) => boolean,
): Promise<Map<string, Row>> {
  let last = new Map<string, Row>();
  return waitFor(
    async () => {
      last = await deployments(f);
      return ok(last) ? last : false;
    },
    { what: `${what} (logs in ${f.logDir})`, timeoutMs: 60_000, intervalMs: 250 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last seen: ${JSON.stringify([...last.values()])}`);
  });
}

test(
  'real-content-deploys-and-a-chart-excluding-the-cluster-fails-with-its-reason',
  { skip, timeout: 120_000 },
  async () => {
    const f = fleet!;
    const rows = await until(
      f,
      'store and edge Ready, legacy Failed',
      (r) =>
        r.get('store')?.state === 'Ready' &&
        r.get('edge')?.state === 'Ready' &&
        r.get('legacy')?.state === 'Failed',
    );
    // The chart whose kubeVersion excludes the cluster: its reason, helm's flag advice gone.
    const legacy = rows.get('legacy')?.reason ?? '';
    assert.match(
      legacy,
      /bundles\/legacy\/chart\/Chart\.yaml: helm failed \(exit 1\): Error: chart requires kubeVersion: >=1\.22\.0-0 <1\.30\.0-0 which is incompatible with Kubernetes v1\.35/,
    );
    assert.doesNotMatch(legacy, /--debug/);
    const [edge] = await f.status();
    assert.equal(edge?.state, 'Failed');
    await assert.rejects(
      f.cli(['wait', '--for', `revision=${f.firstCommit}`, '--timeout', '1m']),
      (err: Error) => (
        assert.match(
          err.message,
          /failed to render.*\n {2}edge: bundle legacy: .*requires kubeVersion/,
        ),
        true
      ),
    );

    // The umbrella chart: one subchart under two aliases, only the enabled one rendered,
    // global values reaching the subchart, tpl'd values and files, the pre-install hook.
    const apps = api(f, AppsV1Api);
    const core = api(f, CoreV1Api);
    const sessions = await apps.readNamespacedStatefulSet({
      name: 'shop-sessions',
      namespace: 'store',
    });
    assert.equal(
      sessions.spec?.template.spec?.containers[0]?.image,
      'registry.example.com/library/memcached:1.6.29-alpine',
    );
    assert.deepEqual(sessions.spec?.template.spec?.containers[0]?.args, ['-m', '64']);
    await assert.rejects(
      apps.readNamespacedStatefulSet({ name: 'shop-queue', namespace: 'store' }),
    );
    const store = await apps.readNamespacedDeployment({ name: 'shop-store', namespace: 'store' });
    const pod = store.spec?.template;
    assert.equal(pod?.metadata?.annotations?.['store.example.com/release'], 'shop-2.19.0');
    assert.equal(pod?.spec?.containers[0]?.image, 'registry.example.com/shop/store:2.19.0');
    assert.deepEqual(
      pod?.spec?.imagePullSecrets?.map((s) => s.name),
      ['regcred'],
    );
    const env = Object.fromEntries(
      (pod?.spec?.containers[0]?.env ?? []).map((e) => [e.name, e.value]),
    );
    assert.equal(env.STORE_CACHE_HOST, 'shop-sessions');
    assert.equal(env.STORE_NAMESPACE, 'store');
    const conf = await core.readNamespacedConfigMap({
      name: 'shop-store-config',
      namespace: 'store',
    });
    assert.match(conf.data?.['store.conf'] ?? '', /^release = shop$/m);
    assert.match(conf.data?.['store.conf'] ?? '', /^host = shop-sessions$/m);
    await core.readNamespacedSecret({ name: 'shop-store', namespace: 'store' });
    assert.deepEqual(completed, ['shop-store-migrate'], 'the pre-install hook, and nothing else');

    // Kustomize: components, replacements, label-selector patches, generated scripts.
    const proxy = await apps.readNamespacedDeployment({ name: 'eu-proxy', namespace: 'edge' });
    const apiDeployment = await apps.readNamespacedDeployment({
      name: 'eu-api',
      namespace: 'edge',
    });
    assert.equal(proxy.spec?.replicas, 2, 'the tier=frontend patch');
    assert.equal(apiDeployment.spec?.replicas, 1, 'not a frontend');
    assert.equal(proxy.spec?.template.spec?.containers[0]?.env?.[0]?.value, 'eu-api');
    assert.equal(
      proxy.metadata?.annotations?.['edge.example.com/api-image'],
      'registry.example.com/edge/api:3.4.1',
    );
    for (const d of [proxy, apiDeployment]) {
      assert.equal(d.spec?.template.metadata?.annotations?.['prometheus.io/scrape'], 'true');
      assert.equal(d.spec?.template.spec?.securityContext?.runAsUser, 10001);
    }
    const volume = proxy.spec?.template.spec?.volumes?.[0]?.configMap;
    assert.equal(volume?.defaultMode, 0o755);
    const scripts = await core.readNamespacedConfigMap({
      name: volume?.name ?? '',
      namespace: 'edge',
    });
    assert.deepEqual(Object.keys(scripts.data ?? {}).sort(), [
      'entrypoint.sh',
      'reload.sh',
      'warmup.sh',
    ]);
    assert.match(scripts.data?.['reload.sh'] ?? '', /\n\tsum=\$\(md5sum/);
    assert.match(scripts.data?.['warmup.sh'] ?? '', /\$\{WARM_QUERY:-shoes\}/);
  },
);

test(
  'objects-the-cluster-refuses-are-failed-with-the-reason-everywhere-and-recover',
  { skip, timeout: 120_000 },
  async () => {
    const f = fleet!;
    const admin = f.clusters.get('edge')!.kubeconfigPath;
    // The cluster's admin takes bind/escalate from the agent (docs/install.md, to give
    // the fleet repo less power) and installs an image policy as an admission webhook.
    const rbac = api(f, RbacAuthorizationV1Api);
    const role = await rbac.readClusterRole({ name: 'flotilla-agent' });
    const delegation = (role.rules ?? []).find((r) => (r.verbs ?? []).includes('escalate'));
    assert.ok(delegation);
    role.rules = (role.rules ?? []).filter((r) => r !== delegation);
    await rbac.replaceClusterRole({ name: 'flotilla-agent', body: role });
    const hook = await startPolicyWebhook();
    await applyManifests(
      admin,
      `apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: { name: allowed-registries }
webhooks:
  - name: registries.policy.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    objectSelector: { matchLabels: { policy.example.com/enforce: "true" } }
    rules:
      - { apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments] }
    clientConfig:
      url: ${hook.url}
      caBundle: ${Buffer.from(hook.caPem).toString('base64')}
`,
    );
    // A commit adds both bundles and upgrades the store (its post-upgrade hook runs).
    const second = await f.repo.commitAndPush('reports operator RBAC, a worker, store 2.20.0', {
      'bundles/access/bundle.yaml': bundle('access', '    path: manifests', 'reports'),
      'bundles/access/manifests/rbac.yaml': ACCESS,
      'bundles/guarded/bundle.yaml': bundle('guarded', '    path: manifests', 'jobs'),
      'bundles/guarded/manifests/worker.yaml': GUARDED,
      'bundles/store/bundle.yaml': bundle(
        'store',
        '    helm: { chart: chart, releaseName: shop, values: { image: { tag: "2.20.0" } } }',
        'store',
      ),
    });
    const RBAC_DENIED =
      /ClusterRole\/reports-operator: .*forbidden: user "system:serviceaccount:flotilla-system:flotilla-agent" .*is attempting to grant RBAC permissions not currently held/s;
    const DENIED =
      /Deployment\/jobs\/worker: admission webhook "registries\.policy\.example\.com" denied the request: image docker\.io\/library\/worker:latest is not from an allowed registry/;
    const rows = await until(
      f,
      'access and guarded Failed, store upgraded',
      (r) =>
        r.get('access')?.state === 'Failed' &&
        r.get('guarded')?.state === 'Failed' &&
        r.get('store')?.state === 'Ready' &&
        completed.includes('shop-store-reindex'),
    );
    assert.match(rows.get('access')?.reason ?? '', RBAC_DENIED);
    assert.match(rows.get('guarded')?.reason ?? '', DENIED);
    assert.equal(rows.get('edge')?.state, 'Ready', 'other bundles keep deploying');
    assert.deepEqual(completed, ['shop-store-migrate', 'shop-store-reindex'], 'post-upgrade only');
    // What the cluster did not refuse of those bundles applied.
    const core = api(f, CoreV1Api);
    await core.readNamespacedConfigMap({ name: 'reports-settings', namespace: 'reports' });
    await core.readNamespacedConfigMap({ name: 'worker-settings', namespace: 'jobs' });

    // flotilla status: the render failure, and what was refused, each with its reason.
    const status = await f.cli(['status']);
    assert.match(status, /\nFailed to render[^\n]*\n {2}bundle legacy on edge: /);
    assert.match(
      status,
      /\nFailed to apply[^\n]*\n(.*\n)*? {2}bundles access, guarded on edge: .*not currently held.*; Deployment\/jobs\/worker: admission webhook/,
    );
    // wait gives up at once, naming both.
    await assert.rejects(
      f.cli(['wait', '--for', `revision=${second}`, '--timeout', '1m']),
      (err: Error) => {
        assert.match(err.message, /bundle legacy: .*requires kubeVersion/);
        assert.match(
          err.message,
          /and what was rendered failed to apply:\n {2}edge: .*not currently held/,
        );
        return true;
      },
    );
    // The page's API: the cluster says both.
    const token = (await f.cli(['token', 'create', 'page'])).trim();
    const cluster = (await httpApi(f, token, '/api/v1/clusters/edge')) as {
      state: string;
      message: string;
      applyFailure: string;
    };
    assert.equal(cluster.state, 'Failed');
    assert.match(cluster.message, /bundle legacy: .*; and apply failed: .*not currently held/s);
    assert.match(cluster.applyFailure, DENIED);
    // An alert for each bundle the cluster refused, though the cluster was already Failed.
    await waitFor(() => receiver!.alerts.filter((a) => a.kind === 'failed').length >= 1, {
      what: 'the apply-failed alert',
      timeoutMs: 30_000,
    });
    const failedAlerts = receiver!.alerts.filter((a) => a.kind === 'failed');
    assert.deepEqual(failedAlerts.flatMap((a) => (a.bundle ?? '').split(',')).sort(), [
      'access',
      'guarded',
    ]);
    assert.match(failedAlerts[0]?.message ?? '', /not currently held|admission webhook/);

    // The admin gives the rights back (no commit: the agent retries), the team moves the
    // image to the allowed registry and drops the legacy chart: everything is Ready.
    role.rules = [...(role.rules ?? []), delegation];
    role.metadata = { name: 'flotilla-agent' };
    await rbac.replaceClusterRole({ name: 'flotilla-agent', body: role });
    const fixed = await f.repo.commitAndPush('worker from our registry; legacy retired', {
      'bundles/guarded/manifests/worker.yaml': GUARDED.replace(
        'docker.io/library/worker:latest',
        'registry.example.com/jobs/worker:1.0.0',
      ),
      'bundles/legacy': null,
    });
    const [ready] = await f.waitForRevision(fixed, 60_000);
    assert.equal(ready?.state, 'Ready');
    await rbac.readClusterRole({ name: 'reports-operator' });
  },
);
