// The objects the agent currently enforces, as they are applied (bundle label set,
// namespace defaulted), keyed by group/kind/namespace/name, with their bundle's policy.
import { errorMessage, objectKey } from '@flotilla/common';
import type { DesiredState, KubeObject } from '@flotilla/common';
import { prepareObject } from '../apply/apply.js';
import { refusal } from '../apply/scope.js';
import type { ManagedNamespaces } from '../apply/scope.js';
import type { KubeApi } from '../kube/types.js';
import { ignoredPaths } from './changes.js';

/** One enforced object. */
export interface ManagedObject {
  bundle: string;
  mode: 'enforce' | 'warn';
  force: boolean;
  /** JSON pointers whose changes are not drift. */
  ignore: string[];
  /** The object exactly as applied. */
  object: KubeObject;
}

/** Enforced objects by key, and the kinds to watch ("apiVersion|kind", or "apiVersion|kind|namespace" in namespaced mode). */
export interface ManagedSet {
  objects: Map<string, ManagedObject>;
  kinds: Set<string>;
  /** Objects that could not be resolved (kind not served), "Kind/name: reason". */
  skipped: string[];
}

/** The watch an object needs: "apiVersion|kind", or "apiVersion|kind|namespace" in namespaced mode. */
export function kindId(
  object: Pick<KubeObject, 'apiVersion' | 'kind' | 'metadata'>,
  namespaces: ManagedNamespaces,
): string {
  return namespaces === undefined
    ? `${object.apiVersion}|${object.kind}`
    : `${object.apiVersion}|${object.kind}|${object.metadata.namespace ?? ''}`;
}

/**
 * Builds the managed set of a desired state; kinds the API does not serve, and objects a
 * namespaced-mode agent refuses, are skipped (their apply failed and is reported). In
 * namespaced mode watches are per namespace: the agent may not list cluster-wide.
 */
export async function managedSet(
  kube: Pick<KubeApi, 'resource'>,
  state: DesiredState,
  defaultNamespace = 'default',
  signal?: AbortSignal,
  namespaces?: ManagedNamespaces,
): Promise<ManagedSet> {
  const objects = new Map<string, ManagedObject>();
  const kinds = new Set<string>();
  const skipped: string[] = [];
  for (const b of state.bundles) {
    for (const raw of b.objects) {
      try {
        const info = await kube.resource(raw.apiVersion, raw.kind, signal);
        const object = prepareObject(raw, info.namespaced, { bundle: b.name, defaultNamespace });
        const refused = refusal(object.metadata, info.namespaced, namespaces);
        if (refused) {
          skipped.push(`${raw.kind}/${raw.metadata.name}: ${refused}`);
          continue;
        }
        objects.set(objectKey(object), {
          bundle: b.name,
          mode: b.drift.mode,
          force: b.forceConflicts,
          ignore: ignoredPaths(b.drift.ignore, object),
          object,
        });
        kinds.add(kindId(object, namespaces));
      } catch (err) {
        skipped.push(`${raw.kind}/${raw.metadata.name}: ${errorMessage(err)}`);
      }
    }
  }
  return { objects, kinds, skipped };
}
