// spec.dependsOn on the agent: bundles are reconciled dependencies first, and a bundle
// whose dependencies are not all applied and healthy at their current digest on this
// cluster is not applied (nor pruned): it waits, and the agent tries again when a
// dependency turns Ready. The hub already refused unknown names and cycles.
import type { BundleDesiredState, BundleWaiting, DesiredState } from '@flotilla/common';

/** Whether a bundle is healthy at a digest, as the agent's health tracking says. */
export type DependencyHealth = (
  bundle: string,
  digest: string,
) => { ready: true } | { ready: false; reason: string };

/** How a bundle came out of this reconcile, as far as its dependents care. */
export type BundleProgress =
  { state: 'applied' } | { state: 'waiting'; reason: string } | { state: 'failed'; reason: string };

/**
 * The bundles in apply order: each after its dependencies, otherwise by name (the
 * state's order). A bundle in a cycle (never sent by the hub) goes last.
 */
export function dependencyOrder(bundles: readonly BundleDesiredState[]): BundleDesiredState[] {
  const byName = new Map(bundles.map((b) => [b.name, b]));
  const out: BundleDesiredState[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (b: BundleDesiredState): boolean => {
    if (done.has(b.name)) return true;
    if (visiting.has(b.name)) return false;
    visiting.add(b.name);
    for (const d of b.dependsOn ?? []) {
      const dep = byName.get(d);
      if (dep && !visit(dep)) return false;
    }
    visiting.delete(b.name);
    done.add(b.name);
    out.push(b);
    return true;
  };
  for (const b of bundles) {
    visiting.clear();
    visit(b);
  }
  for (const b of bundles) if (!done.has(b.name)) out.push(b);
  return out;
}

/** What a bundle waits for; `onHealth`: only the dependency's health is missing (so its turning Ready is the wake). */
export interface DependencyWait {
  waiting: BundleWaiting;
  onHealth: boolean;
}

/**
 * What `bundle` waits for, or undefined when every dependency is applied and healthy. A
 * dependency that is itself waiting or failed has its own wake (its hook, a retry); only a
 * wait on health needs a health change to end it.
 */
export function dependencyWait(
  bundle: BundleDesiredState,
  state: DesiredState,
  progress: ReadonlyMap<string, BundleProgress>,
  health: DependencyHealth | undefined,
): DependencyWait | undefined {
  for (const name of bundle.dependsOn ?? []) {
    const dep = state.bundles.find((b) => b.name === name);
    const wait = (why: string, onHealth = false): DependencyWait => ({
      waiting: { for: name, reason: `waiting for bundle ${name}: ${why}` },
      onHealth,
    });
    if (!dep) {
      const held = (state.held ?? []).includes(name);
      return wait(
        held
          ? 'it is held by the hub (paused, or failed to render) and has no desired state here'
          : 'it is not in this cluster\u2019s desired state',
      );
    }
    const p = progress.get(name);
    if (!p) return wait('it has not been applied yet');
    if (p.state !== 'applied')
      return wait(`it is ${p.state === 'waiting' ? 'waiting' : 'failed'} (${p.reason})`);
    const h = health?.(name, dep.digest);
    if (h && !h.ready) return wait(h.reason, true);
  }
  return undefined;
}
