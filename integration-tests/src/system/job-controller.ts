// Plays the Job controller for one Job on bare test API servers (no controllers run
// there): writes the status the real controller writes when a Job completes.
import type { BatchV1Api } from '@kubernetes/client-node';

/** Marks Job `name` complete (Kubernetes 1.31+ wants SuccessCriteriaMet first, and start and completion times). */
export async function completeJob(
  batch: BatchV1Api,
  name: string,
  namespace: string,
): Promise<void> {
  const job = await batch.readNamespacedJob({ name, namespace });
  const now = new Date();
  const cond = (type: string) => ({
    type,
    status: 'True',
    lastProbeTime: now,
    lastTransitionTime: now,
  });
  job.status = {
    startTime: now,
    completionTime: now,
    succeeded: 1,
    conditions: [cond('SuccessCriteriaMet'), cond('Complete')],
  };
  await batch.replaceNamespacedJobStatus({ name, namespace, body: job });
}
