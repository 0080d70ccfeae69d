// The Kubernetes manifests that install one agent: namespace, service account, RBAC
// (cluster-wide, or restricted to a list of namespaces), the one-time bootstrap Secret,
// the NATS server's CA (a ConfigMap, when it is a private one) and the Deployment, whose
// events not yet accepted by NATS wait in a file on an emptyDir. `flotilla cluster add` writes them; deploy/agent/ holds a rendered
// example; tests dry-run them against a real API server.
import { stringify } from 'yaml';

/** Inputs of agentManifests. */
export interface AgentInstall {
  cluster: string;
  /** host:port of the hub's gRPC endpoint, as the agent reaches it. */
  hub: string;
  /** NATS URL(s) as the agent reaches them (tls://HOST:PORT). */
  nats: string;
  /** CA of the NATS server's certificate (PEM); absent = the system roots. */
  natsCaPem?: string;
  /** Pass --nats-allow-plaintext (a plaintext nats:// URL to a non-loopback server). */
  natsAllowPlaintext?: boolean;
  /** Agent namespace (default flotilla-system). */
  namespace?: string;
  image?: string;
  /** Restrict what the agent may manage to these namespaces; empty = cluster-wide. */
  namespaces?: string[];
  /** Bootstrap token and hub CA: go into the Secret, never printed. */
  token: string;
  caPem: string;
}

/** Default agent image. */
export const DEFAULT_AGENT_IMAGE = 'ghcr.io/flotilla-dev/flotilla-agent:0.1.0';

/** Where the agent's container finds the NATS CA (ConfigMap flotilla-nats-ca, key ca.crt). */
export const AGENT_NATS_CA_DIR = '/etc/flotilla/nats-ca';
/** Where the agent keeps events NATS has not accepted yet (an emptyDir: survives container restarts). */
export const AGENT_EVENT_BUFFER_DIR = '/var/lib/flotilla-agent/events';
/**
 * sizeLimit of the event buffer's emptyDir (64Mi): above the agent's own bound on the
 * directory (a file of at most 32 MiB, plus a rewrite of at most 16 MiB), so the kubelet
 * never evicts the pod for it.
 */
export const AGENT_EVENT_BUFFER_SIZE_LIMIT = '64Mi';

type Obj = Record<string, unknown>;

/** What the agent does to whatever a bundle holds. */
const APPLY_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];

/**
 * Kubernetes lets an account create a Role/ClusterRole, or bind one, only with permissions
 * it holds itself, unless it has `escalate` (roles) and `bind` (bindings). A fixed verb
 * list never holds `*` verbs, nonResourceURLs or cluster-admin, so without this rule a
 * bundle carrying such RBAC fails. The trade-off is in docs/install.md.
 */
const RBAC_DELEGATION = {
  apiGroups: ['rbac.authorization.k8s.io'],
  resources: ['clusterroles', 'roles'],
  verbs: ['bind', 'escalate'],
};

function rbac(ns: string, namespaces: string[]): Obj[] {
  const sa = { kind: 'ServiceAccount', name: 'flotilla-agent', namespace: ns };
  const labels = { 'app.kubernetes.io/name': 'flotilla-agent' };
  // Its own namespace: inventories (ConfigMaps), stored state and identity (Secrets), nothing else.
  const own: Obj[] = [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'flotilla-agent-state', namespace: ns, labels },
      rules: [
        {
          apiGroups: [''],
          resources: ['configmaps', 'secrets'],
          verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
        },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'flotilla-agent-state', namespace: ns, labels },
      roleRef: {
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: 'flotilla-agent-state',
      },
      subjects: [sa],
    },
  ];
  if (namespaces.length === 0) {
    // Cluster-wide: a GitOps agent applies whatever the fleet repo declares, CRDs included.
    return [
      ...own,
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRole',
        metadata: { name: 'flotilla-agent', labels },
        rules: [{ apiGroups: ['*'], resources: ['*'], verbs: APPLY_VERBS }, RBAC_DELEGATION],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'ClusterRoleBinding',
        metadata: { name: 'flotilla-agent', labels },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'flotilla-agent',
        },
        subjects: [sa],
      },
    ];
  }
  // Restricted: full control inside the listed namespaces only; no cluster-scoped writes.
  // Bind and escalate in a Role reach no further than its namespace: a RoleBinding to
  // cluster-admin there grants cluster-admin's rights in that namespace only.
  const managed = namespaces.flatMap((target): Obj[] => [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'flotilla-agent', namespace: target, labels },
      rules: [{ apiGroups: ['*'], resources: ['*'], verbs: APPLY_VERBS }, RBAC_DELEGATION],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'flotilla-agent', namespace: target, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'flotilla-agent' },
      subjects: [sa],
    },
  ]);
  return [...own, ...managed];
}

type DeploymentInputs = Required<Omit<AgentInstall, 'token' | 'caPem' | 'natsCaPem'>> & {
  natsCaPem: string | undefined;
};

function deployment(i: DeploymentInputs): Obj {
  const labels = { 'app.kubernetes.io/name': 'flotilla-agent', 'flotilla.dev/cluster': i.cluster };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'flotilla-agent', namespace: i.namespace, labels },
    spec: {
      replicas: 1,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: { 'app.kubernetes.io/name': 'flotilla-agent' } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: 'flotilla-agent',
          automountServiceAccountToken: true,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 10001,
            runAsGroup: 10001,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'agent',
              image: i.image,
              args: [
                '--cluster',
                i.cluster,
                '--hub',
                i.hub,
                '--nats',
                i.nats,
                ...(i.natsCaPem !== undefined
                  ? ['--nats-ca-file', `${AGENT_NATS_CA_DIR}/ca.crt`]
                  : []),
                ...(i.natsAllowPlaintext ? ['--nats-allow-plaintext'] : []),
                '--event-buffer-dir',
                AGENT_EVENT_BUFFER_DIR,
                '--namespace',
                i.namespace,
                // Namespaced mode: the agent refuses what its Roles could not apply anyway.
                ...(i.namespaces.length > 0
                  ? ['--managed-namespaces', [...i.namespaces].sort().join(',')]
                  : []),
              ],
              resources: { requests: { cpu: '50m', memory: '128Mi' }, limits: { memory: '512Mi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
              volumeMounts: [
                { name: 'tmp', mountPath: '/tmp' },
                { name: 'events', mountPath: AGENT_EVENT_BUFFER_DIR },
                ...(i.natsCaPem !== undefined
                  ? [{ name: 'nats-ca', mountPath: AGENT_NATS_CA_DIR, readOnly: true }]
                  : []),
              ],
            },
          ],
          volumes: [
            { name: 'tmp', emptyDir: {} },
            // Survives a restart of the container (crash, OOM kill, liveness); a PVC in its
            // place keeps the events across a rescheduled pod too (docs/install.md).
            { name: 'events', emptyDir: { sizeLimit: AGENT_EVENT_BUFFER_SIZE_LIMIT } },
            ...(i.natsCaPem !== undefined
              ? [{ name: 'nats-ca', configMap: { name: 'flotilla-nats-ca' } }]
              : []),
          ],
        },
      },
    },
  };
}

/** The agent's install manifests as objects, in apply order. */
export function agentManifestObjects(install: AgentInstall): Obj[] {
  const i = {
    namespace: 'flotilla-system',
    image: DEFAULT_AGENT_IMAGE,
    namespaces: [],
    natsAllowPlaintext: false,
    ...install,
    natsCaPem: install.natsCaPem,
  } as DeploymentInputs & Pick<AgentInstall, 'token' | 'caPem'>;
  const labels = { 'app.kubernetes.io/name': 'flotilla-agent' };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: i.namespace, labels } },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: 'flotilla-agent', namespace: i.namespace, labels },
    },
    ...rbac(i.namespace, i.namespaces),
    {
      // Read once at first start; the token is single-use and expires, so leaving it here is harmless.
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'Opaque',
      metadata: { name: 'flotilla-bootstrap', namespace: i.namespace, labels },
      stringData: { token: i.token, 'ca.crt': i.caPem },
    },
    // The NATS server's CA is public: a ConfigMap.
    ...(i.natsCaPem !== undefined
      ? [
          {
            apiVersion: 'v1',
            kind: 'ConfigMap',
            metadata: { name: 'flotilla-nats-ca', namespace: i.namespace, labels },
            data: { 'ca.crt': i.natsCaPem },
          },
        ]
      : []),
    deployment(i),
  ];
}

/** The manifests as one multi-document YAML. */
export function agentManifests(install: AgentInstall): string {
  return agentManifestObjects(install)
    .map((o) => stringify(o))
    .join('---\n');
}
