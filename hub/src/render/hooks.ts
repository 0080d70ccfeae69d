// Helm hooks: objects annotated helm.sh/hook are not ordinary objects of a bundle. The
// renderer takes them out of `objects` into `hooks`, with their phases, weight and
// delete policies, in the order helm runs them; the agent runs them (agent/src/hooks).
// Mapping and limits: docs/helm.md.
import { HELM_HOOK_ANNOTATION, ValidationError } from '@flotilla/common';
import type { HookDeletePolicy, HookPhase, HookSpec, KubeObject } from '@flotilla/common';

/** helm.sh/hook-weight: an integer, lower first (default 0). */
export const HOOK_WEIGHT_ANNOTATION = 'helm.sh/hook-weight';
/** helm.sh/hook-delete-policy: comma-separated (default before-hook-creation). */
export const HOOK_DELETE_POLICY_ANNOTATION = 'helm.sh/hook-delete-policy';

const RUN: ReadonlySet<string> = new Set<HookPhase>([
  'pre-install',
  'post-install',
  'pre-upgrade',
  'post-upgrade',
  'pre-delete',
]);
// Known to helm, not run by Flotilla: tests (skipped, as `helm template --skip-tests`),
// rollbacks (a rollback is a revert commit, an upgrade), post-delete, and Helm 2's
// crd-install (Helm 3 leaves those objects out too). Docs: helm.md.
const NOT_RUN: ReadonlySet<string> = new Set([
  'test',
  'test-success',
  'test-failure',
  'post-delete',
  'pre-rollback',
  'post-rollback',
  'crd-install',
]);
const POLICIES: ReadonlySet<string> = new Set<HookDeletePolicy>([
  'before-hook-creation',
  'hook-succeeded',
  'hook-failed',
]);

// helm's InstallOrder (pkg/releaseutil/kind_sorter.go): hooks of one weight run in it.
const INSTALL_ORDER = [
  'PriorityClass',
  'Namespace',
  'NetworkPolicy',
  'ResourceQuota',
  'LimitRange',
  'PodSecurityPolicy',
  'PodDisruptionBudget',
  'ServiceAccount',
  'Secret',
  'SecretList',
  'ConfigMap',
  'StorageClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'CustomResourceDefinition',
  'ClusterRole',
  'ClusterRoleList',
  'ClusterRoleBinding',
  'ClusterRoleBindingList',
  'Role',
  'RoleList',
  'RoleBinding',
  'RoleBindingList',
  'Service',
  'DaemonSet',
  'Pod',
  'ReplicationController',
  'ReplicaSet',
  'Deployment',
  'HorizontalPodAutoscaler',
  'StatefulSet',
  'Job',
  'CronJob',
  'IngressClass',
  'Ingress',
  'APIService',
];
const KIND_RANK = new Map(INSTALL_ORDER.map((k, i) => [k, i]));

/** An object of a rendered bundle with where it came from. */
export interface SourcedObject {
  key: string;
  object: KubeObject;
  file: string;
  line: number;
}

/** A bundle's objects split into ordinary ones and hooks (in run order). */
export interface SplitObjects {
  objects: SourcedObject[];
  hooks: { key: string; spec: HookSpec }[];
}

function list(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
}

function hookOf(o: SourcedObject, phasesText: string): HookSpec | undefined {
  const fail = (message: string): never => {
    throw new ValidationError(`${o.object.kind} ${o.object.metadata.name}: ${message}`, {
      file: o.file,
      line: o.line,
    });
  };
  const phases: HookPhase[] = [];
  for (const p of list(phasesText)) {
    if (RUN.has(p)) phases.push(p as HookPhase);
    else if (!NOT_RUN.has(p))
      fail(
        `unknown ${HELM_HOOK_ANNOTATION} phase "${p}" (known: ${[...RUN, ...NOT_RUN].join(', ')})`,
      );
  }
  // Only phases Flotilla does not run (tests, rollbacks, post-delete): left out entirely.
  if (phases.length === 0) return undefined;
  const annotations = o.object.metadata.annotations ?? {};
  const weightText = (annotations[HOOK_WEIGHT_ANNOTATION] ?? '0').trim();
  if (!/^[+-]?\d{1,9}$/.test(weightText))
    fail(`${HOOK_WEIGHT_ANNOTATION} "${weightText}" is not an integer`);
  const policies = list(annotations[HOOK_DELETE_POLICY_ANNOTATION] ?? 'before-hook-creation');
  for (const p of policies)
    if (!POLICIES.has(p))
      fail(`unknown ${HOOK_DELETE_POLICY_ANNOTATION} "${p}" (known: ${[...POLICIES].join(', ')})`);
  return {
    phases,
    weight: Number(weightText),
    deletePolicies: [...new Set(policies)] as HookDeletePolicy[],
    object: o.object,
  };
}

/**
 * Takes hooks out of a bundle's objects: every object annotated helm.sh/hook, whatever the
 * bundle's source. Hooks whose phases Flotilla does not run are dropped. Hooks are sorted
 * as helm runs them: weight, then kind (helm's install order), then identity. Throws
 * ValidationError (file:line) for an unknown phase or policy, or a weight that is not an
 * integer.
 */
export function splitHooks(items: readonly SourcedObject[]): SplitObjects {
  const objects: SourcedObject[] = [];
  const hooks: { key: string; spec: HookSpec }[] = [];
  for (const o of items) {
    const phases = o.object.metadata.annotations?.[HELM_HOOK_ANNOTATION];
    if (phases === undefined) {
      objects.push(o);
      continue;
    }
    const spec = hookOf(o, phases);
    if (spec) hooks.push({ key: o.key, spec });
  }
  const rank = (k: string): number => KIND_RANK.get(k) ?? INSTALL_ORDER.length;
  hooks.sort(
    (a, b) =>
      a.spec.weight - b.spec.weight ||
      rank(a.spec.object.kind) - rank(b.spec.object.kind) ||
      (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
  return { objects, hooks };
}
