// Deleting what a bundle no longer declares. Only objects the caller names (from an
// inventory) are candidates, and each is checked live first: an object annotated
// flotilla.dev/prune=disabled, or now labelled for another bundle, is left alone.
import { BUNDLE_LABEL, KEEP_ON_PRUNE_ANNOTATION, errorMessage } from '@flotilla/common';
import type { KubeApi, ObjectRef } from '../kube/types.js';
import { UnknownKindError } from '../kube/errors.js';
import { entry } from './changeset.js';
import type { ChangeSetEntry } from './changeset.js';
import { mapLimit } from './limit.js';
import { DELETE_ORDER, groupByStage, stageOf } from './order.js';

/** Options of deleteObjects. */
export interface DeleteOptions {
  /** The bundle deleting; objects labelled for another bundle are kept. */
  bundle?: string;
  /** Requests in flight per stage (default 8). */
  concurrency?: number;
  signal?: AbortSignal;
}

/** Deletes one object unless it is protected; 'unchanged' with a reason when kept. */
export async function deleteObject(
  kube: KubeApi,
  ref: ObjectRef,
  opts: DeleteOptions = {},
): Promise<ChangeSetEntry> {
  try {
    const live = await kube.get(ref, opts.signal);
    if (!live) return entry(ref, 'deleted', 'already gone');
    if (live.metadata.annotations?.[KEEP_ON_PRUNE_ANNOTATION] === 'disabled') {
      return entry(ref, 'unchanged', `kept: annotated ${KEEP_ON_PRUNE_ANNOTATION}=disabled`);
    }
    const owner = live.metadata.labels?.[BUNDLE_LABEL];
    if (opts.bundle && owner && owner !== opts.bundle)
      return entry(ref, 'unchanged', `kept: now belongs to bundle ${owner}`);
    await kube.delete(ref, opts.signal);
    return entry(ref, 'deleted');
  } catch (err) {
    // The kind is no longer served (its CRD is gone), so no such object can exist.
    if (err instanceof UnknownKindError) return entry(ref, 'deleted', 'kind no longer served');
    return entry(ref, 'failed', errorMessage(err));
  }
}

/** Deletes objects in reverse apply order (namespaced first, CRDs and Namespaces last). */
export async function deleteObjects(
  kube: KubeApi,
  refs: readonly ObjectRef[],
  opts: DeleteOptions = {},
): Promise<ChangeSetEntry[]> {
  const scoped = await mapLimit(refs, opts.concurrency ?? 8, async (ref) => {
    try {
      return {
        ref,
        namespaced: (await kube.resource(ref.apiVersion, ref.kind, opts.signal)).namespaced,
      };
    } catch {
      // Unknown kind: deleteObject reports it; its stage does not matter.
      return { ref, namespaced: true };
    }
  });
  const results: ChangeSetEntry[] = [];
  for (const group of groupByStage(scoped, (s) => stageOf(s.ref, s.namespaced), DELETE_ORDER)) {
    results.push(
      ...(await mapLimit(group.items, opts.concurrency ?? 8, (s) =>
        deleteObject(kube, s.ref, opts),
      )),
    );
  }
  return results;
}
