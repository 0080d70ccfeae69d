// Helm hooks end to end, on real parts: a chart rendered by the real `helm template` on the
// hub, a kube-apiserver, NATS, a Git server and an agent acting as its own ServiceAccount.
// The chart has a pre-install/pre-upgrade Job (helm's default delete policy,
// before-hook-creation), a test hook (skipped) and a pre-delete Job. A bare API server runs
// no Job controller: the test plays it by writing each hook Job's status subresource, as
// the health tests write Deployment status.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BatchV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { accessSync, constants } from 'node:fs';
import { binaryPaths, requireEnv, requirePrerequisite, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import { completeJob } from '../system/job-controller.js';
import type { Fleet } from '../system/fleet.js';

const CHART = {
  'bundles/app/chart/Chart.yaml': 'apiVersion: v2\nname: app\nversion: 0.1.0\n',
  'bundles/app/chart/values.yaml': 'image: busybox:1\nmessage: one\n',
  'bundles/app/chart/templates/settings.yaml': `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
data:
  message: {{ .Values.message | quote }}
`,
  'bundles/app/chart/templates/migrate.yaml': `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: migrate
          image: {{ .Values.image }}
`,
  'bundles/app/chart/templates/cleanup.yaml': `apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-cleanup
  annotations:
    helm.sh/hook: pre-delete
    helm.sh/hook-delete-policy: hook-succeeded
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: cleanup
          image: busybox:1
`,
  'bundles/app/chart/templates/tests/smoke.yaml': `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-smoke
  annotations:
    helm.sh/hook: test
spec:
  restartPolicy: Never
  containers:
    - name: smoke
      image: busybox:1
`,
};

const BUNDLE = `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: app
spec:
  source:
    helm:
      chart: chart
  namespace: app
  targets:
    - clusterSelector: {}
`;

// Removing the cluster's only bundle deletes all it manages: the mass-prune guard would hold it.
const CLUSTER = `apiVersion: flotilla.dev/v1alpha1
kind: Cluster
metadata:
  name: c1
spec:
  allowMassPrune: true
`;

let fleet: Fleet | undefined;
const skip =
  (await requireEnv(['cluster', 'nats', 'git'])) ??
  (await requirePrerequisite(
    'helm',
    () => (accessSync(binaryPaths().helm, constants.X_OK), true),
    'run integration-tests/tools/prereqs.sh (builds kustomize and helm)',
  ));

before(async () => {
  if (skip) return;
  fleet = await startFleet({
    clusters: ['c1'],
    insecure: true,
    repoFiles: { 'clusters/c1.yaml': CLUSTER, 'bundles/app/bundle.yaml': BUNDLE, ...CHART },
  });
});

after(async () => {
  await fleet?.stop();
});

function clients(f: Fleet): { batch: BatchV1Api; core: CoreV1Api } {
  const kc = new KubeConfig();
  kc.loadFromFile(f.clusters.get('c1')!.kubeconfigPath);
  return { batch: kc.makeApiClient(BatchV1Api), core: kc.makeApiClient(CoreV1Api) };
}

const absent = async (read: () => Promise<unknown>): Promise<boolean> =>
  read().then(
    () => false,
    (err: { code?: number }) => err.code === 404,
  );

interface DeploymentRow {
  bundle: string;
  state: string;
  reason: string;
  waitingFor?: string;
}

async function deployment(f: Fleet): Promise<DeploymentRow | undefined> {
  const out = JSON.parse(await f.cli(['get', 'deployments', '-o', 'json'])) as
    { deployments: DeploymentRow[] } | DeploymentRow[];
  const rows = Array.isArray(out) ? out : out.deployments;
  return rows.find((d) => d.bundle === 'app');
}

test(
  'a-chart-pre-install-job-hook-runs-first-and-an-upgrade-replaces-it',
  { skip, timeout: 240_000 },
  async () => {
    const f = fleet!;
    const { batch, core } = clients(f);
    const settings = () => core.readNamespacedConfigMap({ name: 'app-settings', namespace: 'app' });

    // The hook Job is created first, in the namespace the agent created for the bundle;
    // the chart's ConfigMap waits for it, and status says what the bundle waits for.
    const first = await waitFor(
      async () =>
        (await absent(() => batch.readNamespacedJob({ name: 'app-migrate', namespace: 'app' })))
          ? false
          : batch.readNamespacedJob({ name: 'app-migrate', namespace: 'app' }),
      { what: 'the pre-install hook Job', timeoutMs: 90_000, intervalMs: 250 },
    );
    const waiting = await waitFor(
      async () => {
        const d = await deployment(f);
        return d?.state === 'Waiting' ? d : false;
      },
      { what: 'app Waiting in status', timeoutMs: 30_000, intervalMs: 250 },
    );
    assert.equal(waiting.waitingFor, 'pre-install hook Job/app/app-migrate');
    assert.equal(waiting.reason, 'waiting for pre-install hook Job/app/app-migrate to complete');
    assert.ok(await absent(settings), 'nothing else of the bundle is applied yet');
    const [row] = await f.status();
    assert.equal(row?.state, 'Progressing');

    // The "Job controller" completes it: the rest of the bundle is applied.
    await completeJob(batch, 'app-migrate', 'app');
    await f.waitForRevision(f.firstCommit, 60_000);
    assert.equal((await settings()).data?.message, 'one');
    // The test hook was skipped; the pre-delete hook does not run at install.
    assert.ok(await absent(() => core.readNamespacedPod({ name: 'app-smoke', namespace: 'app' })));
    assert.ok(
      await absent(() => batch.readNamespacedJob({ name: 'app-cleanup', namespace: 'app' })),
    );

    // An upgrade changes the hook Job's pod template, which Kubernetes does not allow in
    // place: before-hook-creation deletes the old Job and creates the new one.
    await f.repo.writeFiles({
      'bundles/app/chart/values.yaml': 'image: busybox:2\nmessage: two\n',
    });
    const second = await f.repo.commitAndPush('Upgrade app');
    const replaced = await waitFor(
      async () => {
        const j = await batch
          .readNamespacedJob({ name: 'app-migrate', namespace: 'app' })
          .catch(() => undefined);
        return j && j.metadata?.uid !== first.metadata?.uid ? j : false;
      },
      { what: 'the pre-upgrade hook Job replaced', timeoutMs: 60_000, intervalMs: 250 },
    );
    assert.equal(replaced.spec?.template.spec?.containers[0]?.image, 'busybox:2');
    assert.equal(
      (
        await waitFor(
          async () => ((await deployment(f))?.state === 'Waiting' ? deployment(f) : false),
          {
            what: 'app Waiting for its pre-upgrade hook',
            timeoutMs: 30_000,
            intervalMs: 250,
          },
        )
      )?.waitingFor,
      'pre-upgrade hook Job/app/app-migrate',
    );
    assert.equal((await settings()).data?.message, 'one', 'the old version runs meanwhile');
    await completeJob(batch, 'app-migrate', 'app');
    await f.waitForRevision(second, 60_000);
    assert.equal((await settings()).data?.message, 'two');

    // Removing the bundle runs its pre-delete hook first; its objects go once it completes,
    // and hook-succeeded deletes the hook.
    await f.repo.remove(Object.keys(CHART).concat('bundles/app/bundle.yaml'));
    const third = await f.repo.commitAndPush('Remove app');
    await waitFor(
      async () =>
        !(await absent(() => batch.readNamespacedJob({ name: 'app-cleanup', namespace: 'app' }))),
      { what: 'the pre-delete hook Job', timeoutMs: 60_000, intervalMs: 250 },
    );
    assert.equal((await settings()).data?.message, 'two', 'objects stay until it completes');
    await completeJob(batch, 'app-cleanup', 'app');
    await f.waitForRevision(third, 60_000);
    assert.ok(await absent(settings));
    assert.ok(
      await absent(() => batch.readNamespacedJob({ name: 'app-cleanup', namespace: 'app' })),
    );
    // The namespace the agent created for the bundle holds only the bundle's leftover
    // pre-upgrade Job (helm keeps hooks without a delete policy): it is pruned. A bare API
    // server has no namespace controller, so it stays Terminating.
    const ns = await core.readNamespace({ name: 'app' }).catch(() => undefined);
    assert.ok(ns === undefined || ns.metadata?.deletionTimestamp !== undefined);
  },
);
