// What the generated agent RBAC can apply, and the mass-prune guard, on real parts: two
// kube-apiservers, NATS, a Git server, the hub and an agent per cluster, each agent acting
// as its own ServiceAccount with the RBAC `flotilla cluster add` generates. "wide" is a
// cluster-wide install; "narrow" a namespaced one (`--namespaces team-a`).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { freePort, requireEnv, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { ClusterStatusRow, Fleet } from '../system/fleet.js';

const cluster = (name: string, spec = ''): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${name}\n  labels:\n    name: ${name}\n${spec}`;
const bundle = (name: string, clusterName: string, namespace: string): string =>
  `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: ${name}
spec:
  namespace: ${namespace}
  targets:
    - clusterName: ${clusterName}
`;
const namespace = (name: string): string =>
  `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ${name}\n`;
const configMap = (name: string, ns?: string): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\n${ns ? `  namespace: ${ns}\n` : ''}data:\n  k: v\n`;

// RBAC a platform team ships: every verb, non-resource URLs, aggregation, cluster-admin bindings.
const ACCESS = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: platform-superuser
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["*"]
  - nonResourceURLs: ["*"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: metrics-scraper
rules:
  - nonResourceURLs: ["/metrics", "/healthz"]
    verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: monitoring-aggregate
aggregationRule:
  clusterRoleSelectors:
    - matchLabels: { example.com/aggregate-to-monitoring: "true" }
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: platform-admins
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }
subjects:
  - { apiGroup: rbac.authorization.k8s.io, kind: Group, name: platform-admins }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: ops-everything
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: ops-cluster-admin
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }
subjects:
  - { apiGroup: rbac.authorization.k8s.io, kind: Group, name: ops }
`;

// A namespaced team's bundle: its own RBAC in team-a applies; what lies outside is refused.
const TEAM = `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: team-everything
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: team-cluster-admin
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin }
subjects:
  - { apiGroup: rbac.authorization.k8s.io, kind: Group, name: team-a }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: team-reader
rules:
  - apiGroups: [""]
    resources: ["configmaps"]
    verbs: ["get"]
`;

const APPS = ['one', 'two', 'three', 'four'];
const appFiles = (names: string[]): Record<string, string> =>
  Object.fromEntries(names.map((n) => [`bundles/apps/manifests/${n}.yaml`, configMap(n)]));

let fleet: Fleet | undefined;
let hook: Server | undefined;
const alerts: { kind: string; cluster: string; message: string; revision: string }[] = [];
const skip = await requireEnv(['cluster', 'nats', 'git']);

before(async () => {
  if (skip) return;
  const port = await freePort();
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      alerts.push(JSON.parse(body) as (typeof alerts)[number]);
      res.end();
    });
  });
  await new Promise<void>((resolve) => hook!.listen(port, '127.0.0.1', resolve));
  fleet = await startFleet({
    clusters: ['wide', 'narrow'],
    namespaced: { narrow: ['team-a'] },
    hubConfigExtra: [
      'notify:',
      '  webhooks:',
      '    - name: test',
      `      url: http://127.0.0.1:${port}/alerts`,
      '      format: json',
    ],
    repoFiles: {
      'clusters/wide.yaml': cluster('wide'),
      'clusters/narrow.yaml': cluster('narrow'),
      'bundles/access/bundle.yaml': bundle('access', 'wide', 'ops'),
      'bundles/access/manifests/namespace.yaml': namespace('ops'),
      'bundles/access/manifests/rbac.yaml': ACCESS,
      'bundles/apps/bundle.yaml': bundle('apps', 'wide', 'apps'),
      'bundles/apps/manifests/namespace.yaml': namespace('apps'),
      ...appFiles(APPS),
      'bundles/team/bundle.yaml': bundle('team', 'narrow', 'team-a'),
      'bundles/team/manifests/settings.yaml': configMap('settings'),
      'bundles/team/manifests/rbac.yaml': TEAM,
      'bundles/team/manifests/elsewhere.yaml': configMap('elsewhere', 'default'),
      'bundles/team/manifests/team-b.yaml': namespace('team-b'),
    },
  });
});

after(async () => {
  await fleet?.stop();
  hook?.close();
});

function api<T>(name: string, make: new (...a: never[]) => T): T {
  const kc = new KubeConfig();
  kc.loadFromFile(fleet!.clusters.get(name)!.kubeconfigPath);
  return kc.makeApiClient(make as never) as T;
}
const exists = async (read: () => Promise<unknown>): Promise<boolean> =>
  read().then(
    () => true,
    (err: { code?: number }) => {
      if (err.code === 404) return false;
      throw err;
    },
  );

/** Polls `flotilla status -o json` until the cluster's row satisfies ok. */
function row(
  name: string,
  ok: (r: ClusterStatusRow) => boolean,
  what: string,
): Promise<ClusterStatusRow> {
  return waitFor(
    async () => {
      const r = (await fleet!.status()).find((x) => x.name === name);
      return r && ok(r) ? r : undefined;
    },
    { what: `${name}: ${what} (logs in ${fleet!.logDir})`, timeoutMs: 90_000, intervalMs: 250 },
  );
}

interface Deployment {
  bundle: string;
  state: string;
  lastError: string;
}

/** Polls `flotilla get deployments --cluster NAME -o json` until ok (events fold after the ack). */
function deployments(
  name: string,
  ok: (ds: Deployment[]) => boolean,
  what: string,
): Promise<Deployment[]> {
  return waitFor(
    async () => {
      const body = JSON.parse(
        await fleet!.cli(['get', 'deployments', '--cluster', name, '-o', 'json']),
      ) as { deployments: Deployment[] };
      return ok(body.deployments) ? body.deployments : undefined;
    },
    { what: `${name}: ${what} (logs in ${fleet!.logDir})`, timeoutMs: 60_000, intervalMs: 250 },
  );
}

test(
  'bundle-with-star-verbs-non-resource-urls-and-cluster-admin-bindings-applies-with-the-generated-rbac',
  { skip, timeout: 180_000 },
  async () => {
    const f = fleet!;
    await row('wide', (r) => r.appliedRevision === f.firstCommit && r.state === 'Ready', 'Ready');
    const rbac = api('wide', RbacAuthorizationV1Api);
    const superuser = await rbac.readClusterRole({ name: 'platform-superuser' });
    assert.deepEqual(superuser.rules?.[0]?.verbs, ['*']);
    assert.deepEqual(superuser.rules?.[1]?.nonResourceURLs, ['*']);
    const crb = await rbac.readClusterRoleBinding({ name: 'platform-admins' });
    assert.equal(crb.roleRef.name, 'cluster-admin');
    const rb = await rbac.readNamespacedRoleBinding({
      name: 'ops-cluster-admin',
      namespace: 'ops',
    });
    assert.equal(rb.roleRef.name, 'cluster-admin');
    assert.ok(await exists(() => rbac.readClusterRole({ name: 'monitoring-aggregate' })));
    await deployments(
      'wide',
      (ds) => ds.map((d) => `${d.bundle}=${d.state}`).join() === 'access=Ready,apps=Ready',
      'both bundles Ready in get deployments',
    );
  },
);

test(
  'a-namespaced-agent-refuses-cluster-scoped-and-foreign-objects-one-by-one-in-status',
  { skip, timeout: 180_000 },
  async () => {
    const r = await row(
      'narrow',
      (x) => x.state === 'Failed' && /team-reader/.test(String(x.message)),
      'Failed naming the refused objects',
    );
    const message = String(r.message);
    assert.match(
      message,
      /ClusterRole\/team-reader: refused: cluster-scoped object, and this agent runs in namespaced mode \(it manages only namespace\(s\) team-a\)/,
    );
    assert.match(message, /Namespace\/team-b: refused: cluster-scoped object/);
    assert.match(
      message,
      /ConfigMap\/default\/elsewhere: refused: namespace "default" is not one this agent manages/,
    );
    const [team] = await deployments(
      'narrow',
      (ds) => ds[0]?.state === 'Failed' && ds[0].lastError !== '',
      'bundle team Failed with its error',
    );
    assert.match(team?.lastError ?? '', /ClusterRole\/team-reader: refused: cluster-scoped object/);
    // Everything inside team-a applied, RBAC delegation within the namespace included.
    const core = api('narrow', CoreV1Api);
    assert.ok(
      await exists(() => core.readNamespacedConfigMap({ name: 'settings', namespace: 'team-a' })),
    );
    const rbac = api('narrow', RbacAuthorizationV1Api);
    const rb = await rbac.readNamespacedRoleBinding({
      name: 'team-cluster-admin',
      namespace: 'team-a',
    });
    assert.equal(rb.roleRef.name, 'cluster-admin');
    assert.equal(await exists(() => rbac.readClusterRole({ name: 'team-reader' })), false);
    assert.equal(await exists(() => core.readNamespace({ name: 'team-b' })), false);
    assert.equal(
      await exists(() => core.readNamespacedConfigMap({ name: 'elsewhere', namespace: 'default' })),
      false,
    );
    // With only its Roles, the agent never asked for anything cluster-wide (watches included).
    const log = await readFile(fleet!.agents.get('narrow')!.logFile, 'utf8');
    assert.doesNotMatch(log, /forbidden|watch failed/i);
  },
);

test(
  'a-mass-prune-commit-is-held-with-status-and-alert-and-released-by-a-fix-or-the-opt-in',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    const core = api('wide', CoreV1Api);
    const rbac = api('wide', RbacAuthorizationV1Api);
    const app = (n: string): Promise<boolean> =>
      exists(() => core.readNamespacedConfigMap({ name: n, namespace: 'apps' }));
    await row('wide', (r) => r.state === 'Ready', 'Ready before the prunes');

    // 1. A bundle emptied (its manifests replaced by a comment): held whatever the share.
    await f.repo.remove(APPS.map((n) => `bundles/apps/manifests/${n}.yaml`));
    await f.repo.remove(['bundles/apps/manifests/namespace.yaml']);
    await f.repo.writeFiles({ 'bundles/apps/manifests/README.yaml': '# moved elsewhere\n' });
    const emptied = await f.repo.commitAndPush('apps: manifests moved');
    const held1 = await row(
      'wide',
      (r) => r.desiredRevision === emptied && r.state === 'Failed',
      'Failed at the emptying commit',
    );
    assert.match(
      String(held1.message),
      new RegExp(
        `^mass prune held at revision ${emptied.slice(0, 12)}: bundle apps has no objects at this revision but manages 5`,
      ),
    );
    assert.ok(await app('one'), 'nothing was pruned');

    // 2. The next commit fixes it: released, nothing lost.
    await f.repo.remove(['bundles/apps/manifests/README.yaml']);
    await f.repo.writeFiles({
      ...appFiles(APPS),
      'bundles/apps/manifests/namespace.yaml': namespace('apps'),
    });
    const fixed = await f.repo.commitAndPush('apps: manifests back');
    await row(
      'wide',
      (r) => r.appliedRevision === fixed && r.state === 'Ready',
      'Ready at the fix',
    );
    assert.ok(await app('one'));

    // 3. Most objects deleted (9 of 12): held, alerted, objects still there.
    await f.repo.remove([
      ...APPS.slice(0, 3).map((n) => `bundles/apps/manifests/${n}.yaml`),
      'bundles/access/manifests/rbac.yaml',
    ]);
    const mass = await f.repo.commitAndPush('drop most apps and the platform RBAC');
    const held2 = await row(
      'wide',
      (r) => r.desiredRevision === mass && r.state === 'Failed',
      'Failed at the mass-prune commit',
    );
    assert.match(
      String(held2.message),
      /it would delete 9 of the 12 objects Flotilla manages on this cluster \(75 %; prune\.maxShare allows 50 %\)/,
    );
    assert.match(String(held2.message), /bundle access: 6 of its 7 .*bundle apps: 3 of its 5/);
    assert.match(String(held2.message), /spec\.allowMassPrune: true .*clusters\/wide\.yaml/);
    assert.notEqual(held2.appliedRevision, mass);
    assert.ok(await app('one'));
    assert.ok(await exists(() => rbac.readClusterRole({ name: 'platform-superuser' })));
    const alert = await waitFor(
      () => alerts.find((a) => a.kind === 'failed' && a.cluster === 'wide' && a.revision === mass),
      { what: 'a failed alert for the held commit', timeoutMs: 30_000, intervalMs: 250 },
    );
    assert.match(alert.message, /mass prune held/);
    const ds = await deployments(
      'wide',
      (x) => x.every((d) => d.state === 'Failed' && d.lastError !== ''),
      'both bundles Failed with the hold',
    );
    assert.match(
      ds.find((d) => d.bundle === 'access')?.lastError ?? '',
      /^mass prune held: would delete 6 of its 7 objects \(ClusterRole\/metrics-scraper, /,
    );

    // 4. The cluster opts in: the same content is applied and pruned.
    await f.repo.writeFiles({
      'clusters/wide.yaml': cluster('wide', 'spec:\n  allowMassPrune: true\n'),
    });
    const optIn = await f.repo.commitAndPush('wide: allow the prune');
    await row(
      'wide',
      (r) => r.appliedRevision === optIn && r.state === 'Ready',
      'Ready at the opt-in',
    );
    assert.equal(await app('one'), false);
    assert.ok(await app('four'));
    assert.equal(await exists(() => rbac.readClusterRole({ name: 'platform-superuser' })), false);
  },
);
