// What the agent benchmarks apply: N apps of Deployment + Service + ConfigMap +
// ServiceAccount, spread over a few bundles and namespaces; and a KubeApi wrapper that
// counts the requests that write.
import type { KubeObject } from '@flotilla/common';
import type {
  ApplyRequestOptions,
  KubeApi,
  ListOptions,
  ObjectRef,
  ResourceInfo,
} from '../kube/types.js';
import { makeState } from '../testing/desired.js';
import type { TestBundle } from '../testing/desired.js';

/** Namespace of app i when apps are spread over `namespaces` namespaces. */
export function benchNamespace(i: number, namespaces: number): string {
  return `bench-${i % namespaces}`;
}

/** The four objects of one app. */
export function appObjects(i: number, namespace: string): KubeObject[] {
  const name = `app-${i}`;
  const labels = { app: name };
  return [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, namespace },
      spec: {
        replicas: 2,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: name,
            containers: [
              {
                name: 'main',
                image: `registry.example.com/${name}:1.0.${i}`,
                ports: [{ containerPort: 8080 }],
                envFrom: [{ configMapRef: { name } }],
              },
            ],
          },
        },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name, namespace },
      spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
    },
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name, namespace },
      data: { LOG_LEVEL: 'info', APP_INDEX: String(i), GREETING: `hello from ${name}` },
    },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name, namespace } },
  ];
}

/** A desired state of `apps` apps (4 objects each) in `bundles` bundles over `namespaces` namespaces (created separately). */
export function benchState(apps: number, bundles = 5, namespaces = 5, revision = 'bench-1') {
  const byBundle: TestBundle[] = Array.from({ length: bundles }, (_, b) => ({
    name: `bench-${b}`,
    objects: [],
  }));
  for (let i = 0; i < apps; i++)
    byBundle[i % bundles]?.objects.push(...appObjects(i, benchNamespace(i, namespaces)));
  return makeState('bench', revision, byBundle);
}

/** A KubeApi that forwards to another and counts writes (non-dry-run applies and deletes). */
export class CountingKube implements KubeApi {
  writes = 0;
  requests = 0;
  /** Writes to objects in this namespace (the agent's own bookkeeping) are counted apart. */
  bookkeeping = 0;

  constructor(
    private readonly inner: KubeApi,
    private readonly agentNamespace: string,
  ) {}

  resource(apiVersion: string, kind: string, signal?: AbortSignal): Promise<ResourceInfo> {
    return this.inner.resource(apiVersion, kind, signal);
  }
  get(ref: ObjectRef, signal?: AbortSignal): Promise<KubeObject | undefined> {
    this.requests++;
    return this.inner.get(ref, signal);
  }
  apply(obj: KubeObject, opts?: ApplyRequestOptions): Promise<KubeObject> {
    this.requests++;
    if (!opts?.dryRun) {
      if (obj.metadata.namespace === this.agentNamespace) this.bookkeeping++;
      else this.writes++;
    }
    return this.inner.apply(obj, opts);
  }
  delete(ref: ObjectRef, signal?: AbortSignal): Promise<boolean> {
    this.requests++;
    this.writes++;
    return this.inner.delete(ref, signal);
  }
  list(apiVersion: string, kind: string, opts?: ListOptions): Promise<KubeObject[]> {
    this.requests++;
    return this.inner.list(apiVersion, kind, opts);
  }
}

/** Median of numbers (0 for none). */
export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

/** The p-th percentile (nearest rank). */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ] as number;
}
