// A bare kube-apiserver runs no Job controller: tests play it by writing a Job's status
// subresource as the controller would when the Job completes or fails (Kubernetes 1.31+
// wants SuccessCriteriaMet / FailureTarget first, and start and completion times).
import type { KubeClient } from '../kube/client.js';

/** Marks a Job Complete or Failed (BackoffLimitExceeded) through its status subresource. */
export async function finishJob(
  kube: KubeClient,
  namespace: string,
  name: string,
  outcome: 'Complete' | 'Failed',
): Promise<void> {
  const now = new Date().toISOString();
  const cond = (type: string) => ({
    type,
    status: 'True',
    lastProbeTime: now,
    lastTransitionTime: now,
    ...(outcome === 'Failed'
      ? { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }
      : {}),
  });
  const status =
    outcome === 'Complete'
      ? {
          startTime: now,
          completionTime: now,
          succeeded: 1,
          conditions: [cond('SuccessCriteriaMet'), cond('Complete')],
        }
      : { startTime: now, failed: 1, conditions: [cond('FailureTarget'), cond('Failed')] };
  await kube.request({
    method: 'PATCH',
    path: `/apis/batch/v1/namespaces/${namespace}/jobs/${name}/status`,
    body: { status },
    contentType: 'application/merge-patch+json',
  });
}
