// Which capabilities each cluster's desired state was rendered with, as the stream asks
// (DesiredStateSource.capabilitiesVersion): a first state held for an agent's report is
// sent only once a rendering that began after the report is served.

/** One source's last finished render: the clusters it declares and the capabilities version it began with. */
export interface RenderedSource {
  /** Clusters of its last good rendering (undefined: none yet). */
  clusters: ReadonlyMap<string, unknown> | undefined;
  /** CapabilitiesStore.version when its last finished render (good or thrown) began; undefined: none finished. */
  capabilitiesVersion: number | undefined;
}

/**
 * Per cluster, the version of the first source declaring it (as the hub's merge does); a
 * cluster no source declares gets the oldest of all sources' versions (-1 for a source
 * that never finished a render), since any of them may declare it once it renders again.
 */
export function renderedWith(sources: readonly RenderedSource[]): (cluster: string) => number {
  const oldest = Math.min(...sources.map((s) => s.capabilitiesVersion ?? -1));
  return (cluster) => {
    for (const s of sources) if (s.clusters?.has(cluster)) return s.capabilitiesVersion ?? -1;
    return oldest;
  };
}
