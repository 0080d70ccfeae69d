// The hub's current desired state per cluster, as the stream reads it. Replacing the
// whole map (one render) notifies listeners with only the clusters whose state changed.
import type { DesiredState } from '@flotilla/common';
import type { DesiredStateSource } from './types.js';

/** In-memory DesiredStateSource fed by the renderer. */
export class DesiredStateStore implements DesiredStateSource {
  private states = new Map<string, DesiredState>();
  private renderedWith: ((cluster: string) => number | undefined) | undefined;
  private readonly listeners = new Set<(clusters: string[]) => void>();

  /** The cluster's state, or undefined when it is not in the fleet. */
  get(cluster: string): DesiredState | undefined {
    return this.states.get(cluster);
  }

  /** Every cluster that has a desired state. */
  clusters(): string[] {
    return [...this.states.keys()];
  }

  /** Registers listener for changed clusters; returns the unsubscribe function. */
  subscribe(listener: (clusters: string[]) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The capabilities version the cluster's state was rendered with, as given to replace. */
  capabilitiesVersion(cluster: string): number | undefined {
    return this.renderedWith?.(cluster);
  }

  /**
   * Replaces all states; returns and announces the clusters that were added, removed or
   * changed. `renderedWith` tells, per cluster, the capabilities version its render began
   * with (see DesiredStateSource.capabilitiesVersion); absent: unknown.
   */
  replace(
    next: ReadonlyMap<string, DesiredState>,
    renderedWith?: (cluster: string) => number | undefined,
  ): string[] {
    const changed: string[] = [];
    for (const [cluster, state] of next) {
      const old = this.states.get(cluster);
      if (!old || old.digest !== state.digest || old.revision !== state.revision)
        changed.push(cluster);
    }
    for (const cluster of this.states.keys()) if (!next.has(cluster)) changed.push(cluster);
    this.states = new Map(next);
    this.renderedWith = renderedWith;
    if (changed.length > 0) for (const l of this.listeners) l(changed);
    return changed;
  }
}
