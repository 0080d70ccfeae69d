// A ServiceAccount kubeconfig from the TokenRequest API: the token is real and carries
// only the account's RBAC (the binaries API server enforces RBAC), and a refresh rewrites it.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { requireEnv, serviceAccountKubeconfig, startCluster } from './index.js';
import type { ServiceAccountKubeconfig, TestCluster } from './index.js';

const skip = await requireEnv(['cluster']);
let cluster: TestCluster | undefined;
let sa: ServiceAccountKubeconfig | undefined;
before(async () => {
  if (!skip) cluster = await startCluster({ name: 'env-sa' });
});
after(async () => {
  await sa?.stop();
  await cluster?.stop();
});

const api = <T>(path: string, make: new (...a: never[]) => T): T => {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc.makeApiClient(make as never) as T;
};
const status = (err: unknown): number | undefined => (err as { code?: number }).code;

test(
  'a-service-account-kubeconfig-has-only-the-accounts-rights-and-refreshes-its-token',
  { skip, timeout: 120_000 },
  async () => {
    const c = cluster!;
    const ns = 'sa-test';
    const core = api(c.kubeconfigPath, CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
    await core.createNamespacedServiceAccount({
      namespace: ns,
      body: { metadata: { name: 'bot' } },
    });
    sa = await serviceAccountKubeconfig(c, { namespace: ns, name: 'bot', expirationSeconds: 600 });
    assert.ok(sa.expiresAt().getTime() > Date.now() + 500_000, 'lifetime as requested');
    const asBot = (): CoreV1Api => api(sa!.kubeconfigPath, CoreV1Api);

    await assert.rejects(
      asBot().listNamespacedConfigMap({ namespace: ns }),
      (err) => status(err) === 403,
      'no RBAC yet: forbidden, not unauthenticated',
    );
    await api(c.kubeconfigPath, RbacAuthorizationV1Api).createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: 'read' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['list'] }],
      },
    });
    await api(c.kubeconfigPath, RbacAuthorizationV1Api).createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: 'read' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'read' },
        subjects: [{ kind: 'ServiceAccount', name: 'bot', namespace: ns }],
      },
    });
    await asBot().listNamespacedConfigMap({ namespace: ns });
    await assert.rejects(asBot().listNamespace(), (err) => status(err) === 403);

    const before = await readFile(sa.tokenFile, 'utf8');
    await sa.refresh();
    assert.notEqual(await readFile(sa.tokenFile, 'utf8'), before);
    await asBot().listNamespacedConfigMap({ namespace: ns });
  },
);
