// A fleet repo for simulated clusters: N Cluster files named as the simulator names its
// agents, and a few bundles. `version` changes one bundle every cluster runs, so a commit
// with a new version gives every cluster a new desired state (what a fan-out measures).
import { simClusterName } from './config.js';

/** Shape of a generated fleet. */
export interface SimFleetOptions {
  clusters: number;
  /** Cluster name prefix (default "sim", as the simulator). */
  prefix?: string;
  /** Bundles (default 5): bundle 0 renders per cluster (${cluster.name}), the others once for all. */
  bundles?: number;
  /** Objects per bundle (default 5): a Deployment and ConfigMaps. */
  objects?: number;
  /** Content version of bundle 1 (every cluster gets it); bump it for a fleet-wide change. */
  version?: number;
  /** Drift mode of the bundles (default enforce). */
  driftMode?: 'enforce' | 'warn';
}

const REGIONS = ['eu', 'us', 'ap'];

function manifest(b: number, i: number, version: number): string {
  const who = b === 0 ? '${cluster.name}' : 'everyone';
  if (i === 0)
    return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-${b}
  labels: { app: app-${b} }
spec:
  replicas: 2
  selector: { matchLabels: { app: app-${b} } }
  template:
    metadata: { labels: { app: app-${b} } }
    spec:
      containers:
        - name: app
          image: registry.example.com/app-${b}:1.${version}
          env: [{ name: FOR, value: "${who}" }]
`;
  const data = Array.from({ length: 10 }, (_, k) => `  key${k}: "v${version}-${b}-${i}-${k}"`);
  return `apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg-${b}-${i}
  annotations: { for: "${who}" }
data:
${data.join('\n')}
`;
}

/** The repo's files (path → content). */
export function simFleetFiles(o: SimFleetOptions): Record<string, string> {
  const prefix = o.prefix ?? 'sim';
  const bundles = o.bundles ?? 5;
  const objects = o.objects ?? 5;
  const files: Record<string, string> = {};
  for (let c = 0; c < o.clusters; c++) {
    const name = simClusterName(c, prefix);
    files[`clusters/${name}.yaml`] = `apiVersion: flotilla.dev/v1alpha1
kind: Cluster
metadata:
  name: ${name}
  labels: { env: ${c % 2 === 0 ? 'prod' : 'dev'}, region: ${REGIONS[c % 3]} }
`;
  }
  for (let b = 0; b < bundles; b++) {
    files[`bundles/bundle-${b}/bundle.yaml`] = `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: bundle-${b}
spec:
  source: { path: manifests }
  namespace: ns-${b}
  targets:
    - clusterSelector: {}
  drift: { mode: ${o.driftMode ?? 'enforce'} }
`;
    for (let i = 0; i < objects; i++)
      files[`bundles/bundle-${b}/manifests/obj-${i}.yaml`] = manifest(
        b,
        i,
        b === 1 ? (o.version ?? 1) : 1,
      );
  }
  return files;
}

/** The files a commit changes to move the fleet to `version` (bundle 1 only). */
export function simFleetBump(o: SimFleetOptions & { version: number }): Record<string, string> {
  const all = simFleetFiles(o);
  return Object.fromEntries(Object.entries(all).filter(([p]) => p.startsWith('bundles/bundle-1/')));
}
