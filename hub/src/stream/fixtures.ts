// Desired states for tests (not part of the hub's API).
import { bundleDigest, desiredStateDigest } from '@flotilla/common';
import type { BundleDesiredState, DesiredState, KubeObject } from '@flotilla/common';

/** A ConfigMap whose data holds `bytes` of incompressible-ish text. */
export function configMap(name: string, bytes = 16, seed = 1): KubeObject {
  let x = seed;
  let text = '';
  // A small LCG: random enough that gzip cannot shrink it much, deterministic for tests.
  while (text.length < bytes) {
    x = (x * 1103515245 + 12345) % 2147483648;
    text += x.toString(36);
  }
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: 'default' },
    data: { blob: text.slice(0, bytes) },
  };
}

/** A desired state with one bundle holding `objects`. */
export function desiredState(
  cluster: string,
  revision: string,
  objects: KubeObject[] = [configMap('a')],
): DesiredState {
  const b: Omit<BundleDesiredState, 'digest'> = {
    name: 'app',
    drift: { mode: 'enforce', ignore: [] },
    forceConflicts: true,
    objects,
  };
  const bundle: BundleDesiredState = { ...b, digest: bundleDigest(b) };
  return { cluster, revision, digest: desiredStateDigest(cluster, [bundle]), bundles: [bundle] };
}
