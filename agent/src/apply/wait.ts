// Custom resources can only be applied once their CRD is Established and discovery
// serves the new kind; wait for both instead of failing the CRs on a race.
import { errorMessage, sleep } from '@flotilla/common';
import type { KubeObject } from '@flotilla/common';
import type { KubeApi } from '../kube/types.js';

/** Options of waitForCrds. */
export interface WaitOptions {
  /** Give up after this long (default 60 000 ms). */
  timeoutMs?: number;
  /** Poll interval (default 250 ms). */
  intervalMs?: number;
  signal?: AbortSignal;
}

interface CrdSpec {
  group?: string;
  names?: { kind?: string };
  versions?: { name: string; served?: boolean }[];
}

function established(live: KubeObject | undefined): boolean {
  const conditions = (
    live?.status as { conditions?: { type: string; status: string }[] } | undefined
  )?.conditions;
  return conditions?.some((c) => c.type === 'Established' && c.status === 'True') ?? false;
}

async function servedKindsResolve(
  kube: KubeApi,
  crd: KubeObject,
  signal?: AbortSignal,
): Promise<boolean> {
  const spec = (crd.spec ?? {}) as CrdSpec;
  const kind = spec.names?.kind;
  if (!spec.group || !kind) return true;
  for (const v of spec.versions ?? []) {
    if (v.served === false) continue;
    try {
      await kube.resource(`${spec.group}/${v.name}`, kind, signal);
    } catch {
      return false;
    }
  }
  return true;
}

/**
 * Waits until each CRD is Established and its kinds resolve in discovery. Returns the
 * names that did not get there, with the reason; an empty map means all are ready.
 */
export async function waitForCrds(
  kube: KubeApi,
  crds: readonly KubeObject[],
  opts: WaitOptions = {},
): Promise<Map<string, string>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  const pending = new Map(crds.map((c) => [c.metadata.name, c]));
  const reasons = new Map<string, string>();
  while (pending.size > 0) {
    for (const [name, crd] of pending) {
      try {
        const live = await kube.get(
          { apiVersion: crd.apiVersion, kind: crd.kind, name },
          opts.signal,
        );
        if (established(live) && (await servedKindsResolve(kube, crd, opts.signal))) {
          pending.delete(name);
          reasons.delete(name);
        } else reasons.set(name, 'not Established yet');
      } catch (err) {
        reasons.set(name, errorMessage(err));
      }
    }
    if (pending.size === 0 || opts.signal?.aborted) break;
    if (Date.now() >= deadline) break;
    await sleep(opts.intervalMs ?? 250, opts.signal);
  }
  return new Map(
    [...pending.keys()].map((n) => [
      n,
      `CustomResourceDefinition ${n}: ${reasons.get(n) ?? 'aborted'}`,
    ]),
  );
}
