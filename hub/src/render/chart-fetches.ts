// The charts one render's helm runs need: each bundle's remote chart, and the
// dependencies a chart kept in the repo does not vendor. Each distinct chart source is
// resolved once per render however many bundles and clusters use it; a chart that
// cannot be had is an error of the bundles that use it (file:line of their helm block),
// never of the render.
import { ValidationError, errorMessage } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import { missingDependencies } from './charts/dependencies.js';
import type { ChartFetcher, ResolvedChart } from './charts/resolver.js';
import { describeSource } from './charts/source.js';
import type { ChartSource } from './charts/source.js';
import type { Cached } from './render-run.js';
import type { BundleDef } from './spec.js';
import type { FetchedCharts, HelmInvocation } from './tool-sources.js';

/** What a helm run gets fetched, and the digests that enter its cache key. */
export type FetchedForRun = FetchedCharts & { digests: string[] };

/** The fetches of one render. */
export class ChartFetches {
  private readonly charts = new Map<string, Promise<ResolvedChart | Error>>();
  private readonly deps = new Map<string, Promise<Cached<FetchedForRun>>>();
  /** True once some run asked for a chart from a repository or registry. */
  used = false;

  constructor(
    private readonly tree: RepoTree,
    private readonly fetcher: ChartFetcher | undefined,
  ) {}

  /** The charts a run needs, or the error that fails its bundle. */
  async forRun(def: BundleDef, inv: HelmInvocation): Promise<Cached<FetchedForRun>> {
    if (inv.remote) {
      const chart = await this.chart(inv.remote, def);
      return chart instanceof ValidationError ? chart : { chart, digests: [chart.digest] };
    }
    const key = `${def.name}\0${inv.chart}`;
    let held = this.deps.get(key);
    if (!held) {
      held = this.dependencies(def, inv.chart);
      this.deps.set(key, held);
    }
    return held;
  }

  private async dependencies(def: BundleDef, chartDir: string): Promise<Cached<FetchedForRun>> {
    const bundleDir = def.file.slice(0, def.file.lastIndexOf('/'));
    let missing;
    try {
      missing = missingDependencies(this.tree, chartDir, bundleDir);
    } catch (err) {
      return err instanceof ValidationError
        ? err
        : new ValidationError(errorMessage(err), { file: def.file });
    }
    if (missing.length === 0) return { digests: [] };
    const charts = `${chartDir === '' ? '' : `${chartDir}/`}charts`;
    const files = new Map<string, Buffer>();
    const digests: string[] = [];
    for (const dep of missing) {
      if ('localDir' in dep) {
        // Its files are the bundle's, already in the bundle's input digest.
        for (const path of this.tree.paths())
          if (path.startsWith(`${dep.localDir}/`))
            files.set(
              `${charts}/${dep.name}/${path.slice(dep.localDir.length + 1)}`,
              this.tree.read(path) as Buffer,
            );
        continue;
      }
      const chart = await this.chart(dep.remote, def, `dependency "${dep.name}" of `);
      if (chart instanceof ValidationError) return chart;
      files.set(`${charts}/${dep.name}-${chart.version}.tgz`, chart.archive);
      digests.push(`${dep.name}@${chart.version}:${chart.digest}`);
    }
    return { files, digests };
  }

  private async chart(
    source: ChartSource,
    def: BundleDef,
    role = '',
  ): Promise<ResolvedChart | ValidationError> {
    this.used = true;
    const key = JSON.stringify(source);
    let held = this.charts.get(key);
    if (!held) {
      held = this.fetcher
        ? this.fetcher.resolve(source).catch((err: unknown) => asError(err))
        : Promise.resolve(new Error('this renderer has no chart fetcher'));
      this.charts.set(key, held);
    }
    const r = await held;
    if (!(r instanceof Error)) return r;
    return new ValidationError(`cannot get the ${role}${describeSource(source)}: ${r.message}`, {
      file: def.file,
      ...(def.helm?.line !== undefined ? { line: def.helm.line } : {}),
    });
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
