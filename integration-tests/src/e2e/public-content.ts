// Content shaped like what platform teams deploy, for the public-content end-to-end test:
// the fixtures under integration-tests/fixtures/public (a chart with a library chart and
// hooks, a Kustomize overlay over a shared base; see their README), the chart `helm
// create` makes (the starting point of most public charts), and operator CRDs of the
// size real ones reach (prometheus-operator's and cert-manager's are 0.5–1 MB each,
// mostly generated descriptions of embedded pod and container schemas).
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { readTree } from '../system/fleet.js';

const run = promisify(execFile);

/** integration-tests/fixtures/public (this file runs as dist/e2e/public-content.js). */
export const PUBLIC_FIXTURES = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'fixtures',
  'public',
);

/** Every file under fixtures/public/<dir>, keyed by `prefix/<path inside dir>`. */
export async function fixtureFiles(dir: string, prefix: string): Promise<Record<string, string>> {
  const files = await readTree(join(PUBLIC_FIXTURES, dir));
  return Object.fromEntries(Object.entries(files).map(([p, t]) => [`${prefix}/${p}`, t]));
}

/** The chart `helm create NAME` makes with this helm, keyed by `prefix/<path>`. */
export async function helmCreate(
  helm: string,
  name: string,
  prefix: string,
): Promise<Record<string, string>> {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-helm-create-'));
  try {
    await run(helm, ['create', name], { cwd: dir, env: { ...process.env, HOME: dir } });
    return await fixtureFilesAt(join(dir, name), prefix);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function fixtureFilesAt(dir: string, prefix: string): Promise<Record<string, string>> {
  const files = await readTree(dir);
  return Object.fromEntries(Object.entries(files).map(([p, t]) => [`${prefix}/${p}`, t]));
}

type Schema = Record<string, unknown>;

// Generated descriptions are what makes operator CRDs large: every field of an embedded
// Kubernetes type carries its Go doc comment.
function describe(path: string): string {
  return (
    `${path} is copied from the upstream type. More info: https://kubernetes.io/docs/` +
    `concepts/ (this field is optional; when it is not set the default of the embedded ` +
    `type applies, and changing it restarts the pods that use it). Cannot be updated ` +
    `for some resources; see the API reference of ${path.split('.').pop() ?? path}.`
  );
}

const str = (path: string, extra: Schema = {}): Schema => ({
  type: 'string',
  description: describe(path),
  ...extra,
});
const int = (path: string): Schema => ({
  type: 'integer',
  format: 'int32',
  description: describe(path),
});
const intOrString = (path: string): Schema => ({
  anyOf: [{ type: 'integer' }, { type: 'string' }],
  'x-kubernetes-int-or-string': true,
  description: describe(path),
});
const obj = (path: string, properties: Record<string, Schema>, required?: string[]): Schema => ({
  type: 'object',
  description: describe(path),
  properties,
  ...(required ? { required } : {}),
});
const list = (path: string, items: Schema, keys?: string[]): Schema => ({
  type: 'array',
  description: describe(path),
  items,
  ...(keys ? { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': keys } : {}),
});

function probe(path: string): Schema {
  return obj(path, {
    exec: obj(`${path}.exec`, { command: list(`${path}.exec.command`, { type: 'string' }) }),
    httpGet: obj(
      `${path}.httpGet`,
      {
        host: str(`${path}.httpGet.host`),
        path: str(`${path}.httpGet.path`),
        port: intOrString(`${path}.httpGet.port`),
        scheme: str(`${path}.httpGet.scheme`),
        httpHeaders: list(
          `${path}.httpGet.httpHeaders`,
          obj(`${path}.httpGet.httpHeaders[]`, {
            name: str(`${path}.httpGet.httpHeaders[].name`),
            value: str(`${path}.httpGet.httpHeaders[].value`),
          }),
        ),
      },
      ['port'],
    ),
    tcpSocket: obj(`${path}.tcpSocket`, { port: intOrString(`${path}.tcpSocket.port`) }, ['port']),
    initialDelaySeconds: int(`${path}.initialDelaySeconds`),
    periodSeconds: int(`${path}.periodSeconds`),
    timeoutSeconds: int(`${path}.timeoutSeconds`),
    failureThreshold: int(`${path}.failureThreshold`),
    successThreshold: int(`${path}.successThreshold`),
  });
}

function container(path: string): Schema {
  const envSource = (p: string): Schema =>
    obj(p, {
      configMapKeyRef: obj(`${p}.configMapKeyRef`, {
        key: str(`${p}.configMapKeyRef.key`),
        name: str(`${p}.configMapKeyRef.name`),
        optional: { type: 'boolean', description: describe(`${p}.optional`) },
      }),
      secretKeyRef: obj(`${p}.secretKeyRef`, {
        key: str(`${p}.secretKeyRef.key`),
        name: str(`${p}.secretKeyRef.name`),
      }),
      fieldRef: obj(`${p}.fieldRef`, { fieldPath: str(`${p}.fieldRef.fieldPath`) }),
    });
  return obj(
    path,
    {
      name: str(`${path}.name`),
      image: str(`${path}.image`),
      imagePullPolicy: str(`${path}.imagePullPolicy`, {
        enum: ['Always', 'IfNotPresent', 'Never'],
      }),
      command: list(`${path}.command`, { type: 'string' }),
      args: list(`${path}.args`, { type: 'string' }),
      workingDir: str(`${path}.workingDir`),
      env: list(
        `${path}.env`,
        obj(
          `${path}.env[]`,
          {
            name: str(`${path}.env[].name`),
            value: str(`${path}.env[].value`),
            valueFrom: envSource(`${path}.env[].valueFrom`),
          },
          ['name'],
        ),
        ['name'],
      ),
      ports: list(
        `${path}.ports`,
        obj(
          `${path}.ports[]`,
          {
            containerPort: int(`${path}.ports[].containerPort`),
            name: str(`${path}.ports[].name`),
            protocol: str(`${path}.ports[].protocol`, { default: 'TCP' }),
          },
          ['containerPort'],
        ),
        ['containerPort', 'protocol'],
      ),
      resources: obj(`${path}.resources`, {
        limits: {
          type: 'object',
          additionalProperties: intOrString(`${path}.resources.limits.*`),
          description: describe(`${path}.resources.limits`),
        },
        requests: {
          type: 'object',
          additionalProperties: intOrString(`${path}.resources.requests.*`),
          description: describe(`${path}.resources.requests`),
        },
      }),
      livenessProbe: probe(`${path}.livenessProbe`),
      readinessProbe: probe(`${path}.readinessProbe`),
      startupProbe: probe(`${path}.startupProbe`),
      securityContext: obj(`${path}.securityContext`, {
        allowPrivilegeEscalation: { type: 'boolean', description: describe(`${path}.ape`) },
        readOnlyRootFilesystem: { type: 'boolean', description: describe(`${path}.rorf`) },
        runAsNonRoot: { type: 'boolean', description: describe(`${path}.runAsNonRoot`) },
        runAsUser: { type: 'integer', format: 'int64', description: describe(`${path}.uid`) },
        capabilities: obj(`${path}.securityContext.capabilities`, {
          add: list(`${path}.capabilities.add`, { type: 'string' }),
          drop: list(`${path}.capabilities.drop`, { type: 'string' }),
        }),
      }),
      volumeMounts: list(
        `${path}.volumeMounts`,
        obj(
          `${path}.volumeMounts[]`,
          {
            mountPath: str(`${path}.volumeMounts[].mountPath`),
            name: str(`${path}.volumeMounts[].name`),
            readOnly: { type: 'boolean', description: describe(`${path}.volumeMounts[].readOnly`) },
            subPath: str(`${path}.volumeMounts[].subPath`),
          },
          ['mountPath', 'name'],
        ),
        ['mountPath'],
      ),
    },
    ['name'],
  );
}

function volume(path: string): Schema {
  const sources: Record<string, Schema> = { name: str(`${path}.name`) };
  for (const source of [
    'configMap',
    'secret',
    'projected',
    'emptyDir',
    'persistentVolumeClaim',
    'csi',
    'hostPath',
    'nfs',
  ])
    sources[source] = obj(`${path}.${source}`, {
      name: str(`${path}.${source}.name`),
      defaultMode: int(`${path}.${source}.defaultMode`),
      optional: { type: 'boolean', description: describe(`${path}.${source}.optional`) },
      items: list(
        `${path}.${source}.items`,
        obj(`${path}.${source}.items[]`, {
          key: str(`${path}.${source}.items[].key`),
          path: str(`${path}.${source}.items[].path`),
          mode: int(`${path}.${source}.items[].mode`),
        }),
      ),
    });
  return obj(path, sources, ['name']);
}

function workloadSpec(path: string): Schema {
  return obj(path, {
    replicas: int(`${path}.replicas`),
    paused: { type: 'boolean', description: describe(`${path}.paused`) },
    image: str(`${path}.image`),
    containers: list(`${path}.containers`, container(`${path}.containers[]`)),
    initContainers: list(`${path}.initContainers`, container(`${path}.initContainers[]`)),
    sidecars: list(`${path}.sidecars`, container(`${path}.sidecars[]`)),
    volumes: list(`${path}.volumes`, volume(`${path}.volumes[]`)),
    nodeSelector: {
      type: 'object',
      additionalProperties: { type: 'string' },
      description: describe(`${path}.nodeSelector`),
    },
    retention: str(`${path}.retention`, {
      pattern:
        '^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$',
    }),
    logLevel: str(`${path}.logLevel`, { enum: ['', 'debug', 'info', 'warn', 'error'] }),
  });
}

/**
 * A CRD shaped like an operator's (group platform.example.com): three versions each with
 * the full schema (as real CRDs keep old versions served), printer columns, status and
 * scale subresources, and the `status` and `creationTimestamp: null` that generated CRD
 * files carry. About 1 MB of JSON per kind.
 */
export function operatorCrd(kind: string): Record<string, unknown> {
  const plural = `${kind.toLowerCase()}s`;
  const schema = (version: string): Schema =>
    obj(`${kind}.${version}`, {
      apiVersion: str('apiVersion'),
      kind: str('kind'),
      metadata: { type: 'object' },
      spec: workloadSpec(`${kind}.${version}.spec`),
      status: obj(`${kind}.${version}.status`, {
        replicas: int(`${kind}.status.replicas`),
        availableReplicas: int(`${kind}.status.availableReplicas`),
        conditions: list(
          `${kind}.status.conditions`,
          obj(
            `${kind}.status.conditions[]`,
            {
              type: str('type'),
              status: str('status'),
              reason: str('reason'),
              message: str('message'),
              lastTransitionTime: str('lastTransitionTime', { format: 'date-time' }),
              observedGeneration: { type: 'integer', format: 'int64' },
            },
            ['type', 'status'],
          ),
          ['type'],
        ),
      }),
    });
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.platform.example.com`,
      creationTimestamp: null,
      annotations: {
        'controller-gen.kubebuilder.io/version': 'v0.16.5',
        'operator.example.com/generated': 'true',
      },
    },
    spec: {
      group: 'platform.example.com',
      names: {
        kind,
        listKind: `${kind}List`,
        plural,
        singular: kind.toLowerCase(),
        categories: ['platform'],
      },
      scope: 'Namespaced',
      versions: ['v1alpha1', 'v1beta1', 'v1'].map((name) => ({
        name,
        served: true,
        storage: name === 'v1',
        ...(name === 'v1alpha1'
          ? {
              deprecated: true,
              deprecationWarning: `platform.example.com/v1alpha1 ${kind} is deprecated; use v1`,
            }
          : {}),
        additionalPrinterColumns: [
          { name: 'Replicas', type: 'integer', jsonPath: '.spec.replicas' },
          { name: 'Available', type: 'integer', jsonPath: '.status.availableReplicas' },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
        schema: { openAPIV3Schema: schema(name) },
        subresources: {
          status: {},
          scale: {
            specReplicasPath: '.spec.replicas',
            statusReplicasPath: '.status.replicas',
          },
        },
      })),
    },
    status: { acceptedNames: { kind: '', plural: '' }, conditions: [], storedVersions: [] },
  };
}

/** Operator CRDs as one YAML file, and a custom resource of the first kind. */
export function operatorBundleFiles(kinds: string[], prefix: string): Record<string, string> {
  const files: Record<string, string> = {};
  for (const kind of kinds)
    files[`${prefix}/crds/${kind.toLowerCase()}.yaml`] = stringify(operatorCrd(kind), {
      lineWidth: 0,
    });
  files[`${prefix}/gateway.yaml`] = `apiVersion: platform.example.com/v1
kind: ${kinds[0] as string}
metadata:
  name: edge
spec:
  replicas: 2
  image: registry.example.com/platform/edge:2.1.0
  logLevel: info
  retention: 15d
  containers:
    - name: edge
      image: registry.example.com/platform/edge:2.1.0
      ports: [{ containerPort: 8443, name: https }]
`;
  return files;
}

/** A Bundle document for every cluster, with the given source block and namespace. */
export const bundle = (name: string, source: string, namespace: string): string =>
  `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata: { name: ${name} }
spec:
  source:
${source}
  namespace: ${namespace}
  targets: [ { clusterSelector: {} } ]
`;
