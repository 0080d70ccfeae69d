// A source's render errors as the sources API shows them: grouped by bundle and message
// with the clusters each keeps from the new revision, so a broken bundle on 10,000
// clusters is one entry, not 10,000. Computed once per render, not per request.
import { renderFailureMessage } from '../status/render-failures.js';
import type { RenderFailure } from '../render/types.js';
import type { SourceRenderError } from './types.js';

/** Entries kept per source (100); renderErrorCount says how many there were. */
export const MAX_SOURCE_RENDER_ERRORS = 100;
/** Cluster names kept per entry (100); clusterCount says how many there were. */
export const MAX_NAMED_CLUSTERS = 100;

/** The grouped render errors of a rendering, and how many groups there were in all. */
export function sourceRenderErrors(rendering: {
  errors: readonly { message: string; bundle?: string | undefined; cluster?: string | undefined }[];
  failures?: ReadonlyMap<string, readonly RenderFailure[]> | undefined;
}): {
  groups: SourceRenderError[];
  total: number;
} {
  const groups = new Map<string, SourceRenderError>();
  const add = (bundle: string, message: string, cluster: string | undefined): void => {
    const key = `${bundle}\0${message}`;
    let g = groups.get(key);
    if (!g) {
      g = { bundle, clusters: [], clusterCount: 0, message };
      groups.set(key, g);
    }
    if (cluster === undefined) return;
    g.clusterCount++;
    if (g.clusters.length < MAX_NAMED_CLUSTERS) g.clusters.push(cluster);
  };
  const attributed = new Set<string>();
  for (const [cluster, failures] of rendering.failures ?? []) {
    for (const f of failures) {
      attributed.add(f.bundle);
      add(f.bundle, renderFailureMessage(f.messages), cluster);
    }
  }
  // What no cluster carries: a broken group file, a bad file name, a bundle no cluster gets.
  for (const e of rendering.errors) {
    if (e.cluster !== undefined) continue;
    if (e.bundle !== undefined && attributed.has(e.bundle)) continue;
    add(e.bundle ?? '', e.message, undefined);
  }
  const all = [...groups.values()].sort((a, b) =>
    a.bundle !== b.bundle ? (a.bundle < b.bundle ? -1 : 1) : b.clusterCount - a.clusterCount,
  );
  for (const g of all) g.clusters.sort();
  return { groups: all.slice(0, MAX_SOURCE_RENDER_ERRORS), total: all.length };
}
