import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { KubeObject } from '@flotilla/common';
import { objectHealth } from './rules.js';
import { bundleState } from './tracker.js';

const o = (
  kind: string,
  spec: unknown,
  status: unknown,
  generation = 1,
  apiVersion = 'apps/v1',
): KubeObject => ({ apiVersion, kind, metadata: { name: 'x', generation }, spec, status });

it('deployment-health-follows-kstatus', () => {
  assert.equal(objectHealth(o('Deployment', { replicas: 2 }, {})).state, 'Progressing');
  assert.equal(
    objectHealth(
      o(
        'Deployment',
        { replicas: 2 },
        { observedGeneration: 1, updatedReplicas: 2, availableReplicas: 1 },
      ),
    ).message,
    '1 of 2 replicas available',
  );
  assert.equal(
    objectHealth(
      o(
        'Deployment',
        { replicas: 2 },
        { observedGeneration: 1, replicas: 2, updatedReplicas: 2, availableReplicas: 2 },
      ),
    ).state,
    'Ready',
  );
  assert.equal(
    objectHealth(
      o(
        'Deployment',
        { replicas: 2 },
        { observedGeneration: 1, updatedReplicas: 2, availableReplicas: 2 },
        2,
      ),
    ).state,
    'Progressing',
  );
  const stuck = {
    observedGeneration: 1,
    conditions: [
      {
        type: 'Progressing',
        status: 'False',
        reason: 'ProgressDeadlineExceeded',
        message: 'too slow',
      },
    ],
  };
  assert.deepEqual(objectHealth(o('Deployment', {}, stuck)), {
    state: 'Degraded',
    message: 'too slow',
  });
});

it('statefulset-daemonset-job-health', () => {
  assert.equal(
    objectHealth(
      o(
        'StatefulSet',
        { replicas: 1 },
        {
          observedGeneration: 1,
          currentReplicas: 1,
          updatedReplicas: 1,
          readyReplicas: 1,
          currentRevision: 'a',
          updateRevision: 'b',
        },
      ),
    ).state,
    'Progressing',
  );
  assert.equal(
    objectHealth(
      o(
        'StatefulSet',
        { replicas: 1 },
        {
          observedGeneration: 1,
          updatedReplicas: 1,
          readyReplicas: 1,
          currentRevision: 'a',
          updateRevision: 'a',
        },
      ),
    ).state,
    'Ready',
  );
  assert.equal(
    objectHealth(
      o(
        'DaemonSet',
        {},
        {
          observedGeneration: 1,
          desiredNumberScheduled: 3,
          updatedNumberScheduled: 3,
          numberAvailable: 2,
        },
      ),
    ).state,
    'Progressing',
  );
  assert.equal(
    objectHealth(
      o(
        'DaemonSet',
        {},
        {
          observedGeneration: 1,
          desiredNumberScheduled: 3,
          updatedNumberScheduled: 3,
          numberAvailable: 3,
        },
      ),
    ).state,
    'Ready',
  );
  assert.equal(
    objectHealth(
      o('Job', {}, { conditions: [{ type: 'Complete', status: 'True' }] }, 1, 'batch/v1'),
    ).state,
    'Ready',
  );
  assert.equal(
    objectHealth(
      o(
        'Job',
        {},
        { conditions: [{ type: 'Failed', status: 'True', message: 'boom' }] },
        1,
        'batch/v1',
      ),
    ).state,
    'Degraded',
  );
  assert.equal(objectHealth(o('Job', {}, {}, 1, 'batch/v1')).state, 'Progressing');
});

it('crd-namespace-pvc-service-and-ready-condition-health', () => {
  assert.equal(
    objectHealth(
      o('CustomResourceDefinition', {}, { conditions: [{ type: 'Established', status: 'True' }] }),
    ).state,
    'Ready',
  );
  assert.equal(objectHealth(o('CustomResourceDefinition', {}, {})).state, 'Progressing');
  assert.equal(objectHealth(o('Namespace', {}, { phase: 'Terminating' })).state, 'Progressing');
  assert.equal(objectHealth(o('Namespace', {}, { phase: 'Active' })).state, 'Ready');
  assert.equal(
    objectHealth(o('PersistentVolumeClaim', {}, { phase: 'Pending' })).state,
    'Progressing',
  );
  assert.equal(objectHealth(o('PersistentVolumeClaim', {}, { phase: 'Lost' })).state, 'Degraded');
  assert.equal(objectHealth(o('PersistentVolumeClaim', {}, { phase: 'Bound' })).state, 'Ready');
  assert.equal(objectHealth(o('Service', { type: 'LoadBalancer' }, {})).state, 'Progressing');
  assert.equal(
    objectHealth(
      o('Service', { type: 'LoadBalancer' }, { loadBalancer: { ingress: [{ ip: '1.2.3.4' }] } }),
    ).state,
    'Ready',
  );
  assert.equal(objectHealth(o('Service', { type: 'ClusterIP' }, {})).state, 'Ready');
  assert.equal(
    objectHealth(
      o(
        'Widget',
        {},
        {
          observedGeneration: 1,
          conditions: [{ type: 'Ready', status: 'False', message: 'waiting' }],
        },
      ),
    ).message,
    'waiting',
  );
  assert.equal(
    objectHealth(
      o('Widget', {}, { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True' }] }),
    ).state,
    'Ready',
  );
  assert.equal(objectHealth(o('ConfigMap', undefined, undefined)).state, 'Ready');
  assert.equal(objectHealth(undefined).state, 'Progressing');
});

it('bundle-state-is-failed-then-degraded-then-progressing-then-ready', () => {
  const r = { state: 'Ready' as const };
  const p = { state: 'Progressing' as const };
  const d = { state: 'Degraded' as const };
  assert.equal(bundleState([r, p, d], 1).state, 'Failed');
  assert.equal(bundleState([r, p, d], 0).state, 'Degraded');
  assert.equal(bundleState([r, p], 0).state, 'Progressing');
  assert.deepEqual(bundleState([r, r], 0), {
    state: 'Ready',
    counts: { ready: 2, progressing: 0, degraded: 0, failed: 0 },
  });
});

// Public charts (databases, brokers) roll StatefulSets out OnDelete or in partitions; the
// controller then leaves pods at the old revision on purpose, and never counts them as
// updated: they were Progressing for ever.
it('statefulset-ondelete-and-partitioned-rollouts-are-ready-when-the-controller-is-done', () => {
  const sts = (updateStrategy: unknown, status: Record<string, unknown>) =>
    objectHealth(
      o('StatefulSet', { replicas: 3, updateStrategy }, { observedGeneration: 1, ...status }),
    );
  const oldPods = { replicas: 3, readyReplicas: 3, currentRevision: 'a', updateRevision: 'b' };
  assert.deepEqual(sts({ type: 'OnDelete' }, { ...oldPods, updatedReplicas: 0 }), {
    state: 'Ready',
  });
  assert.equal(sts({ type: 'OnDelete' }, { ...oldPods, readyReplicas: 2 }).state, 'Progressing');
  const partitioned = { type: 'RollingUpdate', rollingUpdate: { partition: 2 } };
  assert.deepEqual(sts(partitioned, { ...oldPods, updatedReplicas: 1 }), { state: 'Ready' });
  assert.deepEqual(sts(partitioned, { ...oldPods, updatedReplicas: 0 }), {
    state: 'Progressing',
    message: '0 of 1 replicas updated (partition 2)',
  });
  // Without a partition the old rule holds: every replica at the new revision.
  assert.equal(
    sts({ type: 'RollingUpdate' }, { ...oldPods, updatedReplicas: 1 }).state,
    'Progressing',
  );
});
