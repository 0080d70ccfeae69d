// The chart resolver, loaded when the first chart is asked for: most fleets use no chart
// repository, and every module the render worker loads at start counts against its heap
// limit (render.workerMaxHeapBytes).
import type { ChartFetcher, ResolvedChart } from './resolver.js';
import type { ChartSettings } from './settings.js';
import type { ChartSource } from './source.js';

/** A ChartFetcher that imports and builds the real ChartResolver on first resolve(). */
export class LazyChartFetcher implements ChartFetcher {
  private real: Promise<ChartFetcher> | undefined;
  private begun: [string, boolean] | undefined;

  constructor(
    private readonly settings: ChartSettings,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  begin(revision: string, refresh: boolean): void {
    this.begun = [revision, refresh];
    void this.real?.then((r) => r.begin(revision, refresh));
  }

  resolve(source: ChartSource): Promise<ResolvedChart> {
    this.real ??= import('./resolver.js').then(({ ChartResolver }) => {
      const r = new ChartResolver(this.settings, this.env);
      if (this.begun) r.begin(...this.begun);
      return r;
    });
    return this.real.then((r) => r.resolve(source));
  }

  end(): void {
    void this.real?.then((r) => r.end());
  }
}
