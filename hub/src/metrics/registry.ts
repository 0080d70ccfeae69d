// A small Prometheus registry (text exposition format 0.0.4): counters, gauges and
// histograms with labels. Our own instead of prom-client: the hub needs a dozen series,
// this is ~120 lines with no dependency, and it behaves the same on Node 20 and 24.

type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  return keys
    .map(
      (k) =>
        `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
    )
    .join(',');
}

function line(name: string, key: string, value: number): string {
  return `${name}${key ? `{${key}}` : ''} ${Number.isFinite(value) ? value : value > 0 ? '+Inf' : 'NaN'}\n`;
}

/** Something the registry can print. */
interface Metric {
  readonly name: string;
  render(): string;
}

/** A monotonically increasing count. */
export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    private readonly help: string,
  ) {}

  /** Adds n (default 1) to the series with these labels. */
  inc(labels: Labels = {}, n = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + n);
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} counter\n`;
    for (const [k, v] of this.values) out += line(this.name, k, v);
    return out;
  }
}

/** A value that goes up and down; either set directly or computed at scrape time. */
export class Gauge implements Metric {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly collect?: () => Iterable<[Labels, number]>,
  ) {}

  /** Sets the series with these labels. */
  set(labels: Labels, value: number): void {
    this.values.set(labelKey(labels), value);
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} gauge\n`;
    if (this.collect)
      for (const [labels, v] of this.collect()) out += line(this.name, labelKey(labels), v);
    for (const [k, v] of this.values) out += line(this.name, k, v);
    return out;
  }
}

/** Default histogram buckets in seconds (5 ms .. 60 s). */
export const DEFAULT_BUCKETS = [0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60];

/** A distribution of observations in cumulative buckets. */
export class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    private readonly help: string,
    private readonly buckets: readonly number[] = DEFAULT_BUCKETS,
  ) {}

  /** Records one observation. */
  observe(labels: Labels, value: number): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) {
      s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(k, s);
    }
    for (let i = 0; i < this.buckets.length; i++)
      if (value <= (this.buckets[i] as number)) (s.counts[i] as number)++;
    s.sum += value;
    s.count++;
  }

  render(): string {
    let out = `# HELP ${this.name} ${this.help}\n# TYPE ${this.name} histogram\n`;
    for (const [k, s] of this.series) {
      const sep = k ? `${k},` : '';
      this.buckets.forEach(
        (b, i) => (out += `${this.name}_bucket{${sep}le="${b}"} ${s.counts[i]}\n`),
      );
      out += `${this.name}_bucket{${sep}le="+Inf"} ${s.count}\n`;
      out += line(`${this.name}_sum`, k, s.sum) + line(`${this.name}_count`, k, s.count);
    }
    return out;
  }
}

/** Holds metrics and prints them all. */
export class Registry {
  private readonly metrics = new Map<string, Metric>();

  /** Registers a metric (names are unique) and returns it. */
  add<M extends Metric>(metric: M): M {
    if (this.metrics.has(metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.metrics.set(metric.name, metric);
    return metric;
  }

  /** The whole registry in Prometheus text format. */
  render(): string {
    return [...this.metrics.values()].map((m) => m.render()).join('');
  }
}

/** Content type of the text exposition format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
