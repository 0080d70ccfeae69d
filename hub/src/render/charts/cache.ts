// Downloaded chart archives on disk, one file per (chart, version), so a version is
// fetched once and survives hub restarts. Bounded in bytes: after each write the least
// recently used archives (by modification time, touched on every use) are removed until
// the rest fit. Every read checks the archive against the digest it was stored with;
// writes go through a temp file and a rename, so a reader never sees half a chart.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** What is stored with an archive. */
export interface CachedChartMeta {
  /** The chart's identity: repository URL and name, or OCI reference. */
  chart: string;
  version: string;
  /** "sha256:<hex>" of the archive. */
  digest: string;
}

/** A cached archive and what it is. */
export interface CachedChart extends CachedChartMeta {
  archive: Buffer;
}

/** "sha256:<hex>" of bytes. */
export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The on-disk chart cache of one directory. */
export class ChartCache {
  constructor(
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {}

  private base(chart: string, version: string): string {
    return join(this.dir, createHash('sha256').update(`${chart}\0${version}`).digest('hex'));
  }

  /**
   * The archive of (chart, version), or undefined when it is not cached, does not match
   * `digest` (when given), or is damaged.
   */
  async get(chart: string, version: string, digest?: string): Promise<CachedChart | undefined> {
    const base = this.base(chart, version);
    try {
      const meta = JSON.parse(await readFile(`${base}.json`, 'utf8')) as CachedChartMeta;
      if (meta.chart !== chart || meta.version !== version) return undefined;
      if (digest !== undefined && meta.digest !== digest) return undefined;
      const archive = await readFile(`${base}.tgz`);
      if (sha256Digest(archive) !== meta.digest) return undefined;
      const now = new Date();
      await utimes(`${base}.tgz`, now, now).catch(() => undefined);
      return { ...meta, archive };
    } catch {
      // Not cached (or unreadable): fetched again.
      return undefined;
    }
  }

  /** Stores an archive, then trims the cache to its size bound (this archive stays). */
  async put(entry: CachedChart): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const base = this.base(entry.chart, entry.version);
    const tmp = `${base}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    const meta: CachedChartMeta = {
      chart: entry.chart,
      version: entry.version,
      digest: entry.digest,
    };
    // The archive first: a meta file always names an archive that is complete.
    await writeFile(tmp, entry.archive);
    await rename(tmp, `${base}.tgz`);
    await writeFile(`${tmp}.json`, JSON.stringify(meta));
    await rename(`${tmp}.json`, `${base}.json`);
    await this.trim(`${base}.tgz`);
  }

  // Least recently used first, until the archives fit in maxBytes.
  private async trim(keep: string): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const files: { path: string; size: number; mtimeMs: number }[] = [];
    for (const name of names) {
      if (!name.endsWith('.tgz')) continue;
      const path = join(this.dir, name);
      const s = await stat(path).catch(() => undefined);
      if (s) files.push({ path, size: s.size, mtimeMs: s.mtimeMs });
    }
    let total = files.reduce((n, f) => n + f.size, 0);
    files.sort((a, b) => a.mtimeMs - b.mtimeMs);
    for (const f of files) {
      if (total <= this.maxBytes) break;
      if (f.path === keep) continue;
      await rm(f.path, { force: true });
      await rm(f.path.replace(/\.tgz$/, '.json'), { force: true });
      total -= f.size;
    }
  }
}
