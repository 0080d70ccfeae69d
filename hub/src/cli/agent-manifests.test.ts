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
  nats: 'nats://nats.example.com:4222',
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
