// The deploy artifacts, validated against real tools: the hub chart passes `helm lint`
// and `helm template`, and what it renders passes a server-side dry run on a real
// kube-apiserver; so do the agent manifests `flotilla cluster add` writes (cluster-wide
// and namespace-restricted RBAC). The Dockerfiles cannot be built here (no container
// engine), so their rules are checked statically.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { agentManifests, compileHubConfig } from '@flotilla/hub';
import { binaryPaths, requireEnv, requirePrerequisite, startCluster } from '@flotilla/test-env';
import type { TestCluster } from '@flotilla/test-env';
import { applyManifests, parseManifests } from '../system/install.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const CHART = join(ROOT, 'deploy', 'helm', 'flotilla-hub');
const HELM = binaryPaths().helm;

const skipCluster = await requireEnv(['cluster']);
const skipHelm =
  skipCluster ??
  (await requirePrerequisite(
    'helm',
    () => {
      accessSync(HELM, constants.X_OK);
    },
    'run integration-tests/tools/build-tools.sh (or set FLOTILLA_HELM)',
  ));

let cluster: TestCluster | undefined;

before(async () => {
  if (!skipCluster) cluster = await startCluster({ name: 'deploy' });
});
after(async () => {
  await cluster?.stop();
});

function helm(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(HELM, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      err ? reject(new Error(`helm ${args[0]}: ${stderr || stdout}`)) : resolve(stdout),
    );
  });
}

/** Namespaces for real (so namespaced objects can be admitted), everything else as a server-side dry run. */
async function dryRun(text: string): Promise<number> {
  const objects = parseManifests(text);
  const { stringify } = await import('yaml');
  const ns = objects.filter((o) => o.kind === 'Namespace');
  const rest = objects.filter((o) => o.kind !== 'Namespace');
  if (ns.length > 0)
    await applyManifests(cluster!.kubeconfigPath, ns.map((o) => stringify(o)).join('---\n'));
  await applyManifests(cluster!.kubeconfigPath, rest.map((o) => stringify(o)).join('---\n'), {
    dryRun: true,
  });
  return objects.length;
}

const CHART_VALUES = [
  '--set',
  'nats.authSecretName=flotilla-nats-auth',
  '--set',
  'nats.caConfigMapName=flotilla-nats-ca',
  '--set',
  'sources[0].auth.secretName=fleet-git',
  '--set',
  'sources[0].name=fleet',
  '--set',
  'sources[0].url=https://git.example.com/fleet.git',
  '--set',
  'identity.secretName=flotilla-hub-identity',
];

test('hub-chart-passes-a-source-path-and-poll-jitter-to-the-hub', { skip: skipHelm }, async () => {
  const text = await helm([
    'template',
    'flotilla-hub',
    CHART,
    '--kube-version',
    '1.35.4',
    ...CHART_VALUES,
    '--set',
    'sources[0].path=deploy/fleet',
    '--set',
    'sources[0].pollJitter=0.2',
  ]);
  const cm = parseManifests(text).find((o) => o.kind === 'ConfigMap') as unknown as {
    data: Record<string, string>;
  };
  const cfg = compileHubConfig(parse(cm.data['hub.yaml'] as string), 'hub.yaml', {
    defaultCacheDir: '/tmp',
  });
  assert.equal(cfg.sources[0]?.path, 'deploy/fleet');
  assert.equal(cfg.sources[0]?.pollJitter, 0.2);
});

test(
  'hub-chart-mounts-the-sops-age-key-secret-where-the-hub-config-reads-it',
  { skip: skipHelm },
  async () => {
    const text = await helm([
      'template',
      'flotilla-hub',
      CHART,
      '--kube-version',
      '1.35.4',
      ...CHART_VALUES,
      '--set',
      'sops.ageKeySecretName=flotilla-sops-age',
    ]);
    const objects = parseManifests(text);
    const cm = objects.find((o) => o.kind === 'ConfigMap') as unknown as {
      data: Record<string, string>;
    };
    const hubYaml = parse(cm.data['hub.yaml'] as string) as { render: Record<string, unknown> };
    assert.equal(hubYaml.render.sopsAgeKeyFile, '/etc/flotilla/sops/keys.txt');
    assert.equal(hubYaml.render.workerMaxHeapBytes, 512 * 1024 * 1024, 'other settings kept');
    const pod = (
      objects.find((o) => o.kind === 'Deployment') as unknown as {
        spec: {
          template: {
            spec: {
              containers: {
                volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
              }[];
              volumes: { name: string; secret?: { secretName: string } }[];
            };
          };
        };
      }
    ).spec.template.spec;
    assert.deepEqual(
      pod.containers[0]?.volumeMounts.find((m) => m.name === 'sops-age'),
      { name: 'sops-age', mountPath: '/etc/flotilla/sops', readOnly: true },
    );
    assert.equal(
      pod.volumes.find((v) => v.name === 'sops-age')?.secret?.secretName,
      'flotilla-sops-age',
    );
  },
);

test(
  'hub-chart-runs-three-replicas-named-after-their-pods-spread-over-nodes-with-a-pdb',
  { skip: skipHelm },
  async () => {
    const render = async (...set: string[]) =>
      parseManifests(
        await helm([
          'template',
          'flotilla-hub',
          CHART,
          '--kube-version',
          '1.35.4',
          ...CHART_VALUES,
          ...set.flatMap((v) => ['--set', v]),
        ]),
      );
    type Dep = {
      spec: {
        replicas: number;
        strategy: { type: string; rollingUpdate?: { maxUnavailable: number } };
        selector: { matchLabels: Record<string, string> };
        template: {
          spec: {
            containers: {
              env?: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
              startupProbe?: {
                httpGet: { path: string };
                periodSeconds: number;
                failureThreshold: number;
              };
              livenessProbe?: { httpGet: { path: string } };
              volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
            }[];
            volumes: {
              name: string;
              secret?: { secretName: string; defaultMode: number };
              persistentVolumeClaim?: { claimName: string };
            }[];
            affinity?: {
              podAntiAffinity?: {
                preferredDuringSchedulingIgnoredDuringExecution: {
                  weight: number;
                  podAffinityTerm: {
                    topologyKey: string;
                    labelSelector: { matchLabels: Record<string, string> };
                  };
                }[];
              };
            };
          };
        };
      };
    };
    type Pdb = {
      spec: { maxUnavailable?: number; minAvailable?: number; selector: { matchLabels: unknown } };
    };
    const objects = await render();
    const dep = objects.find((o) => o.kind === 'Deployment') as unknown as Dep;
    assert.equal(dep.spec.replicas, 3);
    assert.deepEqual(
      [dep.spec.strategy.type, dep.spec.strategy.rollingUpdate?.maxUnavailable],
      ['RollingUpdate', 1],
    );
    // replicaId from the pod's name (downward API).
    assert.deepEqual(
      dep.spec.template.spec.containers[0]?.env?.find((e) => e.name === 'FLOTILLA_HUB_REPLICA')
        ?.valueFrom?.fieldRef?.fieldPath,
      'metadata.name',
    );
    const [term] =
      dep.spec.template.spec.affinity?.podAntiAffinity
        ?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    assert.equal(term?.podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
    assert.deepEqual(
      term?.podAffinityTerm.labelSelector.matchLabels,
      dep.spec.selector.matchLabels,
    );
    // A replica's start waits for NATS (its identity records): liveness is held back by a
    // startup probe for 5 minutes, so the kubelet does not restart a replica that waits.
    const probe = dep.spec.template.spec.containers[0]?.startupProbe;
    assert.equal(probe?.httpGet.path, '/healthz');
    assert.ok(
      (probe?.periodSeconds ?? 10) * (probe?.failureThreshold ?? 3) >= 300,
      'startup ≥ 5 min',
    );
    assert.equal(dep.spec.template.spec.containers[0]?.livenessProbe?.httpGet.path, '/healthz');
    const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget') as unknown as Pdb;
    assert.equal(pdb.spec.maxUnavailable, 1);
    assert.deepEqual(pdb.spec.selector.matchLabels, dep.spec.selector.matchLabels);
    // Streams and KV buckets in three copies, one hubId shared by the replicas.
    const cm = objects.find((o) => o.kind === 'ConfigMap') as unknown as {
      data: Record<string, string>;
    };
    const cfg = compileHubConfig(parse(cm.data['hub.yaml'] as string), 'hub.yaml', {
      defaultCacheDir: '/tmp',
    });
    assert.equal(cfg.nats.replicas, 3);
    assert.equal(cfg.status.hubId, 'main');
    // Replicas ask each other over HTTP (a headless Service of ready pods) before a
    // replica cut from NATS sends its agents away.
    const peers = objects.find(
      (o) => o.kind === 'Service' && (o.metadata as { name: string }).name.endsWith('-peers'),
    ) as unknown as { metadata: { name: string }; spec: { clusterIP: string; selector: unknown } };
    assert.equal(peers.spec.clusterIP, 'None');
    assert.deepEqual(peers.spec.selector, dep.spec.selector.matchLabels);
    assert.deepEqual(cfg.status.peers, [`${peers.metadata.name}.default.svc:7080`]);
    // The CA comes from one Secret mounted read-only in every replica (made by `flotilla
    // hub init`); the records are in NATS KV, so there is no shared volume at all.
    assert.equal(
      objects.find((o) => o.kind === 'PersistentVolumeClaim'),
      undefined,
      'no identity volume with replicas',
    );
    const pod = dep.spec.template.spec;
    assert.deepEqual(pod.volumes.find((v) => v.name === 'identity')?.secret, {
      secretName: 'flotilla-hub-identity',
      defaultMode: 0o400,
    });
    assert.deepEqual(
      pod.containers[0]?.volumeMounts.find((m) => m.name === 'identity'),
      { name: 'identity', mountPath: cfg.identity.stateDir, readOnly: true },
    );
    // Without the Secret the chart refuses, naming the command that makes it.
    await assert.rejects(
      render('identity.secretName='),
      /identity\.secretName is required with replicas > 1: make the hub's identity once with `flotilla hub init --identity-dir DIR`/,
    );

    // One replica: a single hub as before, no PDB (it would block every drain).
    const one = await render('replicas=1');
    const single = one.find((o) => o.kind === 'Deployment') as unknown as Dep;
    assert.equal(single.spec.replicas, 1);
    assert.equal(single.spec.strategy.type, 'Recreate');
    assert.equal(single.spec.template.spec.containers[0]?.env, undefined);
    assert.equal(
      one.filter((o) => o.kind === 'Service' && !o.metadata?.name?.endsWith('-renderer')).length,
      1,
      'no peers Service',
    );
    // It makes its own CA and keeps its records on a ReadWriteOnce volume.
    const pvc = one.find((o) => o.kind === 'PersistentVolumeClaim') as unknown as {
      spec: { accessModes: string[] };
    };
    assert.deepEqual(pvc.spec.accessModes, ['ReadWriteOnce']);
    assert.ok(
      single.spec.template.spec.volumes.find((v) => v.name === 'identity')?.persistentVolumeClaim,
    );
    assert.equal(
      one.find((o) => o.kind === 'PodDisruptionBudget'),
      undefined,
    );
  },
);

test('hub-chart-passes-helm-lint', { skip: skipHelm }, async () => {
  const out = await helm(['lint', CHART, '--strict', ...CHART_VALUES]);
  assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
});

test('hub-chart-renders-and-passes-a-server-side-dry-run', { skip: skipHelm }, async () => {
  const text = await helm([
    'template',
    'flotilla-hub',
    CHART,
    '--namespace',
    'flotilla-system',
    '--kube-version',
    '1.35.4',
    ...CHART_VALUES,
  ]);
  const objects = parseManifests(text);
  const kinds = objects.map((o) => o.kind).sort();
  assert.deepEqual(kinds, [
    'ConfigMap',
    'Deployment',
    'Deployment',
    'NetworkPolicy',
    'PodDisruptionBudget',
    'Secret',
    'Service',
    'Service',
    'Service',
    'ServiceAccount',
  ]);
  const withNs = `apiVersion: v1\nkind: Namespace\nmetadata:\n  name: flotilla-system\n---\n${text.replace(/^(metadata:)$/gm, '$1\n  namespace: flotilla-system')}`;
  assert.equal(
    await dryRun(withNs),
    11,
    'the renderer, its Service, NetworkPolicy and TLS Secret too',
  );
  // The hub.yaml the chart writes is one the hub accepts.
  const cm = objects.find((o) => o.kind === 'ConfigMap') as unknown as {
    data: Record<string, string>;
  };
  const cfg = compileHubConfig(parse(cm.data['hub.yaml'] as string), 'hub.yaml', {
    defaultCacheDir: '/tmp',
  });
  assert.equal(cfg.insecure, false);
  assert.equal(cfg.nats.credsFile, '/etc/flotilla/nats/hub.creds');
  assert.deepEqual(
    [cfg.nats.url, cfg.nats.tls, cfg.nats.caFile],
    ['tls://nats.flotilla-system.svc:4222', true, '/etc/flotilla/nats-ca/ca.crt'],
    'NATS over TLS, verified against the CA from its ConfigMap',
  );
  assert.equal(cfg.sources[0]?.path, '', 'no path: the repository root');
  assert.equal(cfg.prune.maxShare, 0.5, 'mass-prune safety at its default');
  // The render worker's heap stays well under the pod's 1Gi memory limit.
  assert.equal(cfg.render.workerMaxHeapBytes, 512 * 1024 * 1024);
  // Non-root, read-only root filesystem.
  const dep = objects.find(
    (o) => o.kind === 'Deployment' && o.metadata?.name === 'flotilla-hub',
  ) as unknown as {
    spec: {
      template: {
        spec: {
          securityContext: { runAsNonRoot: boolean };
          containers: { securityContext: { readOnlyRootFilesystem: boolean } }[];
        };
      };
    };
  };
  assert.equal(dep.spec.template.spec.securityContext.runAsNonRoot, true);
  assert.equal(dep.spec.template.spec.containers[0]?.securityContext.readOnlyRootFilesystem, true);
  const pod = dep.spec.template.spec as unknown as {
    volumes: { name: string; configMap?: { name: string } }[];
    containers: { volumeMounts: { name: string; mountPath: string }[] }[];
  };
  assert.equal(pod.volumes.find((v) => v.name === 'nats-ca')?.configMap?.name, 'flotilla-nats-ca');
  assert.ok(
    pod.containers[0]?.volumeMounts.some(
      (m) => m.name === 'nats-ca' && m.mountPath === '/etc/flotilla/nats-ca',
    ),
  );
});

type PodSpec = {
  automountServiceAccountToken?: boolean;
  securityContext: { runAsUser: number; runAsNonRoot: boolean; seccompProfile?: { type: string } };
  containers: {
    args?: string[];
    env?: unknown[];
    securityContext: { readOnlyRootFilesystem: boolean; allowPrivilegeEscalation: boolean };
    volumeMounts: { name: string; mountPath: string }[];
  }[];
  volumes: {
    name: string;
    secret?: { secretName: string; items?: { key: string; path: string }[] };
    emptyDir?: object;
    persistentVolumeClaim?: object;
    configMap?: object;
  }[];
};
type Workload = {
  metadata: { name: string };
  spec: {
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  };
};

test(
  'hub-chart-runs-kustomize-and-helm-in-a-renderer-with-its-own-uid-no-credentials-and-no-egress',
  { skip: skipHelm },
  async () => {
    const objects = parseManifests(
      await helm([
        'template',
        'flotilla-hub',
        CHART,
        '--namespace',
        'flotilla-system',
        '--kube-version',
        '1.35.4',
        ...CHART_VALUES,
        '--set',
        'sops.ageKeySecretName=flotilla-sops-age',
      ]),
    );
    const deployments = objects.filter((o) => o.kind === 'Deployment') as unknown as Workload[];
    const hub = deployments.find((d) => d.metadata.name === 'flotilla-hub');
    const renderer = deployments.find((d) => d.metadata.name === 'flotilla-hub-renderer');
    assert.ok(hub && renderer, 'a hub and a renderer Deployment');
    const pod = renderer.spec.template.spec;
    const hubPod = hub.spec.template.spec;
    // Its own uid, non-root, read-only root, writable /tmp only, no token.
    assert.equal(pod.securityContext.runAsUser, 10002);
    assert.notEqual(pod.securityContext.runAsUser, hubPod.securityContext.runAsUser);
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.seccompProfile?.type, 'RuntimeDefault');
    assert.equal(pod.automountServiceAccountToken, false);
    const [c] = pod.containers;
    assert.equal(c?.securityContext.readOnlyRootFilesystem, true);
    assert.equal(c?.securityContext.allowPrivilegeEscalation, false);
    assert.equal(c?.env, undefined, 'no environment (no credentials)');
    assert.equal(c?.args?.[0], 'renderer');
    assert.ok(pod.volumes.find((v) => v.name === 'tmp')?.emptyDir, '/tmp is an emptyDir');
    // The only Secret is its TLS material, and never the hub's client key.
    const secrets = pod.volumes.filter((v) => v.secret);
    assert.deepEqual(
      secrets.map((v) => v.secret?.items?.map((i) => i.key)),
      [['ca.crt', 'renderer.crt', 'renderer.key']],
    );
    assert.ok(!pod.volumes.some((v) => v.persistentVolumeClaim || v.configMap));
    // The renderer's pods are not the hub's, and the other way round.
    const hubLabels = hub.spec.selector.matchLabels;
    const podLabels = renderer.spec.template.metadata.labels;
    assert.ok(
      Object.entries(hubLabels).some(([k, v]) => podLabels[k] !== v),
      "the hub's selector does not pick the renderer's pods",
    );
    // NetworkPolicy: no egress at all, ingress from hub pods on the render port only.
    const np = objects.find((o) => o.kind === 'NetworkPolicy') as unknown as {
      spec: {
        podSelector: { matchLabels: Record<string, string> };
        policyTypes: string[];
        egress: unknown[];
        ingress: {
          from: { podSelector?: { matchLabels: Record<string, string> } }[];
          ports: { port: number; protocol: string }[];
        }[];
      };
    };
    assert.deepEqual(np.spec.podSelector.matchLabels, renderer.spec.selector.matchLabels);
    assert.deepEqual([...np.spec.policyTypes].sort(), ['Egress', 'Ingress']);
    assert.deepEqual(np.spec.egress, []);
    assert.equal(np.spec.ingress.length, 1);
    assert.deepEqual(np.spec.ingress[0]?.from, [{ podSelector: { matchLabels: hubLabels } }]);
    assert.deepEqual(np.spec.ingress[0]?.ports, [{ protocol: 'TCP', port: 7444 }]);
    // The hub is configured to use it, with the client half of the TLS material.
    const cm = objects.find((o) => o.kind === 'ConfigMap') as unknown as {
      data: Record<string, string>;
    };
    const hubYaml = parse(cm.data['hub.yaml'] as string) as { render: Record<string, unknown> };
    assert.equal(
      hubYaml.render.sopsAgeKeyFile,
      '/etc/flotilla/sops/keys.txt',
      'sops stays in the hub',
    );
    delete hubYaml.render.sopsAgeKeyFile; // not mounted here
    const cfg = compileHubConfig(hubYaml, 'hub.yaml', { defaultCacheDir: '/tmp' });
    assert.deepEqual(cfg.render.remote, {
      address: 'flotilla-hub-renderer.flotilla-system.svc:7444',
      caFile: '/etc/flotilla/renderer-tls/ca.crt',
      certFile: '/etc/flotilla/renderer-tls/hub.crt',
      keyFile: '/etc/flotilla/renderer-tls/hub.key',
      maxJobBytes: 128 * 1024 * 1024,
    });
    assert.deepEqual(
      hubPod.volumes.find((v) => v.name === 'renderer-tls')?.secret?.items?.map((i) => i.key),
      ['ca.crt', 'hub.crt', 'hub.key'],
    );
    // renderer.enabled=false: kustomize and helm in the hub, as before.
    const off = parseManifests(
      await helm([
        'template',
        'flotilla-hub',
        CHART,
        '--kube-version',
        '1.35.4',
        ...CHART_VALUES,
        '--set',
        'renderer.enabled=false',
      ]),
    );
    assert.equal(off.filter((o) => o.kind === 'Deployment').length, 1);
    assert.ok(!off.some((o) => o.kind === 'NetworkPolicy' || o.kind === 'Secret'));
  },
);

const INSTALL = {
  cluster: 'edge-eu',
  hub: 'hub.example.com:7443',
  nats: 'tls://nats.example.com:4222',
  natsCaPem: '-----BEGIN CERTIFICATE-----\nnats placeholder\n-----END CERTIFICATE-----\n',
  token: 'flt.0000000000000000.placeholder',
  caPem: '-----BEGIN CERTIFICATE-----\nplaceholder\n-----END CERTIFICATE-----\n',
};

test('agent-manifests-cluster-wide-pass-a-server-side-dry-run', { skip: skipCluster }, async () => {
  const text = agentManifests(INSTALL);
  assert.equal(await dryRun(text), 9, 'the NATS CA ConfigMap among them');
  assert.match(text, /readOnlyRootFilesystem: true/);
  assert.match(text, /runAsNonRoot: true/);
});

test(
  'agent-manifests-restricted-to-namespaces-grant-nothing-cluster-wide',
  { skip: skipCluster },
  async () => {
    await applyManifests(
      cluster!.kubeconfigPath,
      'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-a\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: team-b\n',
    );
    const text = agentManifests({
      ...INSTALL,
      namespace: 'flotilla-restricted',
      namespaces: ['team-a', 'team-b'],
    });
    const objects = parseManifests(text);
    assert.ok(
      !objects.some((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding'),
      'no cluster-wide RBAC',
    );
    assert.deepEqual(
      objects
        .filter((o) => o.kind === 'Role')
        .map((o) => o.metadata?.namespace)
        .sort(),
      ['flotilla-restricted', 'team-a', 'team-b'],
    );
    assert.equal(await dryRun(text), objects.length);
  },
);

test('dockerfiles-are-multi-stage-node-24-non-root', async () => {
  for (const name of ['hub', 'agent']) {
    const text = await readFile(join(ROOT, 'deploy', 'images', `${name}.Dockerfile`), 'utf8');
    const froms = text.match(/^FROM .*/gm) ?? [];
    assert.ok(froms.length >= 2, `${name}: multi-stage`);
    assert.match(text, /^ARG NODE_IMAGE=node:24[-\w]*$/m, `${name}: Node.js 24 base`);
    assert.equal(
      froms.at(-1),
      'FROM ${NODE_IMAGE}',
      `${name}: the runtime stage is the Node.js 24 image`,
    );
    assert.match(text, /^USER 10001:10001$/m, `${name}: fixed numeric non-root user`);
    assert.doesNotMatch(text, /^ADD\s+https?:/m, `${name}: nothing downloaded with ADD`);
    assert.match(text, /^ENTRYPOINT \[/m);
  }
  const hub = await readFile(join(ROOT, 'deploy', 'images', 'hub.Dockerfile'), 'utf8');
  assert.match(hub, /kustomize/);
  assert.match(hub, /helm\.sh\/helm\/v3\/cmd\/helm/);
  assert.match(hub, /github\.com\/getsops\/sops\/v3\/cmd\/sops/);
  assert.match(hub, /FLOTILLA_SOPS=\/usr\/local\/bin\/sops/);
});

test('dockerfiles-copy-every-workspace-manifest-before-npm-ci', async () => {
  // npm ci refuses a lockfile naming a workspace whose package.json is missing.
  const root = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
    workspaces: string[];
  };
  for (const name of ['hub', 'agent']) {
    const text = await readFile(join(ROOT, 'deploy', 'images', `${name}.Dockerfile`), 'utf8');
    const beforeCi = text.slice(0, text.indexOf('RUN npm ci'));
    assert.ok(beforeCi.length < text.length, `${name}: runs npm ci`);
    for (const ws of root.workspaces)
      assert.ok(
        beforeCi.includes(`COPY ${ws}/package.json ${ws}/`),
        `${name}.Dockerfile: COPY ${ws}/package.json before npm ci`,
      );
  }
});
