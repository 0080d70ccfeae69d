// Is an object doing what it was asked to? Rules in the spirit of kstatus: a controller
// that has not observed the latest generation, or has not rolled it out yet, is
// Progressing; a terminal failure (deadline exceeded, Job failed, volume lost) is
// Degraded; anything with no rule is Ready once it exists.
import type { KubeObject } from '@flotilla/common';

/** Health of one object. */
export type ObjectHealthState = 'Ready' | 'Progressing' | 'Degraded';

/** Health with the reason a user would want to see. */
export interface ObjectHealth {
  state: ObjectHealthState;
  message?: string;
}

interface Condition {
  type?: string;
  status?: string;
  reason?: string;
  message?: string;
}

type Status = Record<string, unknown> & { conditions?: Condition[]; observedGeneration?: number };

const ready: ObjectHealth = { state: 'Ready' };
const progressing = (message: string): ObjectHealth => ({ state: 'Progressing', message });
const degraded = (message: string): ObjectHealth => ({ state: 'Degraded', message });

function condition(status: Status, type: string): Condition | undefined {
  return Array.isArray(status.conditions)
    ? status.conditions.find((c) => c?.type === type)
    : undefined;
}

function num(v: unknown, fallback = 0): number {
  return typeof v === 'number' ? v : fallback;
}

type StatefulSetStrategy = {
  type?: string;
  rollingUpdate?: { partition?: number };
};

function replicasHealth(kind: string, obj: KubeObject, status: Status): ObjectHealth {
  const spec = obj.spec as { replicas?: number; updateStrategy?: StatefulSetStrategy } | undefined;
  const want = num(spec?.replicas, 1);
  const p = condition(status, 'Progressing');
  if (p?.status === 'False' && p.reason === 'ProgressDeadlineExceeded')
    return degraded(p.message ?? 'progress deadline exceeded');
  // A StatefulSet updated OnDelete, or only above a partition, is rolled out when the
  // controller did what it was asked: the pods left at the old revision wait for a person
  // (or a partition change), as kstatus and Argo CD read it.
  const strategy = kind === 'StatefulSet' ? spec?.updateStrategy : undefined;
  const onDelete = strategy?.type === 'OnDelete';
  const partition =
    strategy?.type !== 'OnDelete' ? Math.max(0, num(strategy?.rollingUpdate?.partition)) : 0;
  const toUpdate = Math.max(0, want - partition);
  const updated = num(
    kind === 'StatefulSet'
      ? (status.updatedReplicas ?? status.currentReplicas)
      : status.updatedReplicas,
  );
  if (!onDelete && updated < toUpdate)
    return progressing(
      `${updated} of ${toUpdate} replicas updated${partition > 0 ? ` (partition ${partition})` : ''}`,
    );
  const available = num(kind === 'StatefulSet' ? status.readyReplicas : status.availableReplicas);
  if (available < want) return progressing(`${available} of ${want} replicas available`);
  if (num(status.replicas, want) > want)
    return progressing(`${num(status.replicas)} replicas, ${want} wanted: old ones terminating`);
  if (
    kind === 'StatefulSet' &&
    !onDelete &&
    partition === 0 &&
    status.updateRevision &&
    status.currentRevision !== status.updateRevision
  )
    return progressing('rolling update in progress');
  return ready;
}

function daemonSetHealth(status: Status): ObjectHealth {
  const want = num(status.desiredNumberScheduled);
  if (num(status.updatedNumberScheduled) < want)
    return progressing(`${num(status.updatedNumberScheduled)} of ${want} pods updated`);
  if (num(status.numberAvailable) < want)
    return progressing(`${num(status.numberAvailable)} of ${want} pods available`);
  return ready;
}

function byKind(obj: KubeObject, status: Status): ObjectHealth | undefined {
  switch (obj.kind) {
    case 'Deployment':
    case 'StatefulSet':
      return replicasHealth(obj.kind, obj, status);
    case 'DaemonSet':
      return daemonSetHealth(status);
    case 'Job':
      if (condition(status, 'Failed')?.status === 'True')
        return degraded(condition(status, 'Failed')?.message ?? 'job failed');
      return condition(status, 'Complete')?.status === 'True'
        ? ready
        : progressing('job not complete');
    case 'CustomResourceDefinition':
      if (condition(status, 'NamesAccepted')?.status === 'False')
        return degraded(condition(status, 'NamesAccepted')?.message ?? 'names not accepted');
      return condition(status, 'Established')?.status === 'True'
        ? ready
        : progressing('not established');
    case 'Namespace':
      return status.phase === 'Terminating' ? progressing('terminating') : ready;
    case 'PersistentVolumeClaim':
      if (status.phase === 'Lost') return degraded('volume lost');
      return status.phase === 'Bound'
        ? ready
        : progressing(`phase ${String(status.phase ?? 'Pending')}`);
    case 'Service': {
      if ((obj.spec as { type?: string } | undefined)?.type !== 'LoadBalancer') return ready;
      const ingress = (status.loadBalancer as { ingress?: unknown[] } | undefined)?.ingress;
      return Array.isArray(ingress) && ingress.length > 0
        ? ready
        : progressing('waiting for a load balancer address');
    }
    default:
      return undefined;
  }
}

/** Health of a live object (undefined = it does not exist). */
export function objectHealth(obj: KubeObject | undefined): ObjectHealth {
  if (!obj) return progressing('not found');
  const status = (obj.status ?? {}) as Status;
  const generation = obj.metadata.generation;
  const controlled =
    ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(obj.kind) ||
    condition(status, 'Ready') !== undefined;
  if (
    controlled &&
    typeof generation === 'number' &&
    typeof status.observedGeneration === 'number' &&
    status.observedGeneration < generation
  ) {
    return progressing(`generation ${generation} not observed yet`);
  }
  if (obj.metadata.deletionTimestamp) return progressing('being deleted');
  const rule = byKind(obj, status);
  if (rule) return rule;
  const stalled = condition(status, 'Stalled');
  if (stalled?.status === 'True') return degraded(stalled.message ?? stalled.reason ?? 'stalled');
  const r = condition(status, 'Ready');
  if (r && r.status !== 'True') return progressing(r.message ?? r.reason ?? 'not ready');
  return ready;
}
