// The agent's generated RBAC and Deployment: what a bundle's RBAC needs (escalate, bind),
// and namespaced mode's Roles matching the flag the agent refuses by. Real API servers
// check the same manifests in integration-tests (deploy/artifacts, e2e/agent-rbac).
import assert from 'node:assert/strict';
import test from 'node:test';
import { compileConfig, parseAgentArgs } from '@flotilla/agent';
import { agentManifestObjects } from './agent-manifests.js';

const INSTALL = {
  cluster: 'edge-eu',
  hub: 'hub.example.com:7443',
  nats: 'tls://nats.example.com:4222',
  token: 'flt.secret',
  caPem: 'ca',
};

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
const rulesOf = (o: Record<string, unknown> | undefined): Rule[] => (o?.rules ?? []) as Rule[];
const args = (objs: Record<string, unknown>[]): string[] => {
  const dep = objs.find((o) => o.kind === 'Deployment') as {
    spec: { template: { spec: { containers: { args: string[] }[] } } };
  };
  return dep.spec.template.spec.containers[0]?.args ?? [];
};
const delegation: Rule = {
  apiGroups: ['rbac.authorization.k8s.io'],
  resources: ['clusterroles', 'roles'],
  verbs: ['bind', 'escalate'],
};

test('cluster-wide-agent-may-escalate-and-bind-so-bundles-can-carry-any-rbac', () => {
  const objs = agentManifestObjects(INSTALL);
  const role = objs.find((o) => o.kind === 'ClusterRole');
  assert.deepEqual(rulesOf(role), [
    {
      apiGroups: ['*'],
      resources: ['*'],
      verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
    },
    delegation,
  ]);
  assert.ok(!args(objs).includes('--managed-namespaces'));
  assert.equal(compileConfig(parseAgentArgs(args(objs), {}), 'v').managedNamespaces, undefined);
});

test('namespaced-agent-gets-roles-in-its-namespaces-and-the-flag-that-refuses-the-rest', () => {
  const objs = agentManifestObjects({ ...INSTALL, namespaces: ['team-b', 'team-a'] });
  assert.ok(!objs.some((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding'));
  const roles = objs.filter(
    (o) => o.kind === 'Role' && (o.metadata as { name: string }).name === 'flotilla-agent',
  );
  assert.deepEqual(
    roles.map((r) => (r.metadata as { namespace: string }).namespace),
    ['team-b', 'team-a'],
  );
  for (const r of roles) assert.deepEqual(rulesOf(r)[1], delegation);
  const config = compileConfig(parseAgentArgs(args(objs), {}), 'v');
  assert.deepEqual(config.managedNamespaces, ['team-a', 'team-b']);
  assert.equal(config.namespace, 'flotilla-system');
});

type Pod = {
  containers: { args: string[]; volumeMounts: { name: string; mountPath: string }[] }[];
  volumes: { name: string; emptyDir?: { sizeLimit?: string }; configMap?: { name: string } }[];
};
const podOf = (objs: Record<string, unknown>[]): Pod =>
  (objs.find((o) => o.kind === 'Deployment') as { spec: { template: { spec: Pod } } }).spec.template
    .spec;

test('a-private-nats-ca-is-mounted-from-a-configmap-and-passed-to-the-agent', () => {
  const objs = agentManifestObjects({ ...INSTALL, natsCaPem: 'NATS CA PEM' });
  const cm = objs.find((o) => o.kind === 'ConfigMap') as {
    metadata: { name: string; namespace: string };
    data: Record<string, string>;
  };
  assert.deepEqual(
    [cm.metadata.name, cm.metadata.namespace, cm.data['ca.crt']],
    ['flotilla-nats-ca', 'flotilla-system', 'NATS CA PEM'],
  );
  const pod = podOf(objs);
  const mount = pod.containers[0]?.volumeMounts.find((m) => m.name === 'nats-ca');
  assert.equal(pod.volumes.find((v) => v.name === 'nats-ca')?.configMap?.name, 'flotilla-nats-ca');
  const config = compileConfig(parseAgentArgs(args(objs), {}), 'v');
  assert.equal(config.natsCaFile, `${mount?.mountPath}/ca.crt`);
  assert.equal(config.natsTls, true);
  // Without a private CA: TLS against the system roots, no ConfigMap.
  const plain = agentManifestObjects(INSTALL);
  assert.ok(!plain.some((o) => o.kind === 'ConfigMap'));
  assert.equal(compileConfig(parseAgentArgs(args(plain), {}), 'v').natsTls, true);
});

test('the-agent-keeps-its-event-buffer-on-a-size-limited-emptydir', () => {
  const objs = agentManifestObjects(INSTALL);
  const pod = podOf(objs);
  const mount = pod.containers[0]?.volumeMounts.find((m) => m.name === 'events');
  assert.equal(pod.volumes.find((v) => v.name === 'events')?.emptyDir?.sizeLimit, '64Mi');
  assert.equal(compileConfig(parseAgentArgs(args(objs), {}), 'v').eventBufferDir, mount?.mountPath);
});
