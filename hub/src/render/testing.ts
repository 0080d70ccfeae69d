// Builders of small fleet repos for tests and the benchmark.
import { MapRepoTree } from '../source/tree.js';

/** clusters/<name>.yaml text. */
export function clusterYaml(name: string, labels: Record<string, string> = {}, spec = ''): string {
  const lines = Object.entries(labels)
    .map(([k, v]) => `\n    ${k}: "${v}"`)
    .join('');
  return `apiVersion: flotilla.dev/v1alpha1
kind: Cluster
metadata:
  name: ${name}
  labels:${lines || ' {}'}
${spec ? `spec:\n${spec}` : ''}`;
}

/** bundles/<name>/bundle.yaml text; `spec` is the indented body of spec. */
export function bundleYaml(name: string, spec: string): string {
  return `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: ${name}
spec:
${spec}`;
}

/** A ConfigMap manifest. */
export function configMap(
  name: string,
  data: Record<string, string> = {},
  namespace?: string,
): string {
  const ns = namespace ? `\n  namespace: ${namespace}` : '';
  const body = Object.entries(data)
    .map(([k, v]) => `\n  ${k}: "${v}"`)
    .join('');
  return `apiVersion: v1
kind: ConfigMap
metadata:
  name: ${name}${ns}
data:${body || ' {}'}
`;
}

/** A tree from path → text. */
export function repo(files: Record<string, string>): MapRepoTree {
  return MapRepoTree.fromStrings(files);
}
