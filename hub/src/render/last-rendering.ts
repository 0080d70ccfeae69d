// The last good rendering of a source, kept in a file so that a restarted hub serves it
// at once, before (or without) fetching Git and rendering again, and whether or not NATS
// is up. One file per source, `<cacheDir>/.rendered/<source>.json.gz`, replaced atomically
// (written aside, synced, renamed). Bundles are stored once per digest (many clusters
// share them) and every digest is checked when read: a file that cannot be read, is too
// large, was written for another source, or does not match its digests is logged and
// ignored, never served and never a crash.
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { BundleDesiredState, DesiredState, Logger, PrunePolicy } from '@flotilla/common';
import { bundleDigest, desiredStateDigest, errorMessage } from '@flotilla/common';
import type { RenderFailure, RolloutPlan } from './types.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Format tag of the file; another tag is not read. */
export const LAST_RENDERING_FORMAT = 'flotilla.dev/last-rendering/v1';
/** Largest file read or written (64 MiB, compressed). */
export const LAST_RENDERING_MAX_FILE_BYTES = 64 * 1024 * 1024;
/** Largest decompressed content read (512 MiB). */
export const LAST_RENDERING_MAX_JSON_BYTES = 512 * 1024 * 1024;

/** The rendering as the hub holds it (app.ts FleetRendering fits). */
export interface SavedRenderingContent {
  revision: string;
  clusters: ReadonlyMap<string, DesiredState>;
  labels: ReadonlyMap<string, Record<string, string>>;
  errors: readonly { message: string; bundle?: string | undefined; cluster?: string | undefined }[];
  failures?: ReadonlyMap<string, readonly RenderFailure[]>;
  rollouts?: ReadonlyMap<string, RolloutPlan>;
  resolvesCharts?: boolean;
}

/** What identifies the source a file was written for: another url, ref or path is another source. */
export interface SavedSourceIdentity {
  name: string;
  url: string;
  ref: string;
  path: string;
}

/** A rendering read back, and when it was saved. */
export interface LoadedRendering {
  rendering: SavedRenderingContent & {
    clusters: Map<string, DesiredState>;
    labels: Map<string, Record<string, string>>;
  };
  savedAt: Date;
}

interface FileState {
  cluster: string;
  revision: string;
  digest: string;
  bundles: string[];
  held?: string[];
  prune?: PrunePolicy;
}

interface FileContent {
  format: string;
  source: SavedSourceIdentity;
  savedAt: string;
  revision: string;
  bundles: Record<string, BundleDesiredState>;
  clusters: FileState[];
  labels: [string, Record<string, string>][];
  errors: { message: string; bundle?: string; cluster?: string }[];
  failures: [string, RenderFailure[]][];
  rollouts: [string, Omit<RolloutPlan, 'stageOf'> & { stageOf: [string, number][] }][];
  resolvesCharts: boolean;
}

/** Options of a LastRenderingFile. */
export interface LastRenderingFileOptions {
  /** Directory of the files (the hub uses `<cacheDir>/.rendered`). */
  dir: string;
  source: SavedSourceIdentity;
  logger: Logger;
  /** Largest file (default LAST_RENDERING_MAX_FILE_BYTES). */
  maxFileBytes?: number;
  /** Largest decompressed content (default LAST_RENDERING_MAX_JSON_BYTES). */
  maxJsonBytes?: number;
  /** Wait between a save and its encoding (default LAST_RENDERING_SAVE_DELAY_MS); flush() does not wait. */
  saveDelayMs?: number;
}

/**
 * Wait between a rendering and its save (1 s). The save's JSON of the whole fleet ran on the
 * event loop before the render's states reached any session (~25 ms of 1,000 clusters', ten
 * times that at 10,000), and its gzip took a core during the fan-out; a hub killed within
 * the second keeps the rendering saved before, and renders again once Git answers.
 */
export const LAST_RENDERING_SAVE_DELAY_MS = 1_000;

/** The file holding one source's last good rendering. */
export class LastRenderingFile {
  readonly path: string;
  private pending: SavedRenderingContent | undefined;
  private writing: Promise<void> | undefined;
  private delayed: NodeJS.Timeout | undefined;

  constructor(private readonly opts: LastRenderingFileOptions) {
    this.path = join(opts.dir, `${opts.source.name}.json.gz`);
  }

  /** Reads the saved rendering; undefined (and a log line saying why) when there is none to serve. */
  async load(): Promise<LoadedRendering | undefined> {
    const log = this.opts.logger;
    const max = this.opts.maxFileBytes ?? LAST_RENDERING_MAX_FILE_BYTES;
    try {
      const size = (await stat(this.path)).size;
      if (size > max) {
        log.warn({ file: this.path, bytes: size, max }, 'saved rendering too large: ignored');
        return undefined;
      }
      const json = await gunzipAsync(await readFile(this.path), {
        maxOutputLength: this.opts.maxJsonBytes ?? LAST_RENDERING_MAX_JSON_BYTES,
      });
      return decodeRendering(JSON.parse(json.toString('utf8')) as unknown, this.opts.source);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      log.warn(
        { file: this.path, err: errorMessage(err) },
        'saved rendering cannot be read: ignored, waiting for a render',
      );
      return undefined;
    }
  }

  /**
   * Saves a rendering in the background, after saveDelayMs (nothing is encoded here: the
   * fan-out of the same rendering goes first); renderings arriving meanwhile coalesce
   * (the latest is written).
   */
  save(rendering: SavedRenderingContent): void {
    this.pending = rendering;
    if (this.writing || this.delayed) return;
    this.delayed = setTimeout(
      () => this.start(),
      this.opts.saveDelayMs ?? LAST_RENDERING_SAVE_DELAY_MS,
    );
    this.delayed.unref();
  }

  /** Resolves once every save asked for so far is written (or failed and logged); a delayed one starts now. */
  async flush(): Promise<void> {
    if (this.delayed) this.start();
    while (this.writing) await this.writing;
  }

  private start(): void {
    clearTimeout(this.delayed);
    this.delayed = undefined;
    this.writing ??= this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending) {
        const rendering = this.pending;
        this.pending = undefined;
        await this.write(rendering);
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async write(rendering: SavedRenderingContent): Promise<void> {
    const log = this.opts.logger;
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      const body = await gzipAsync(
        Buffer.from(JSON.stringify(encodeRendering(rendering, this.opts.source))),
      );
      const max = this.opts.maxFileBytes ?? LAST_RENDERING_MAX_FILE_BYTES;
      if (body.length > max) {
        log.warn(
          { file: this.path, bytes: body.length, max, revision: rendering.revision },
          'rendering too large to save: a restart waits for Git and a render',
        );
        return;
      }
      await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(body);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
      log.debug(
        { file: this.path, bytes: body.length, revision: rendering.revision },
        'rendering saved',
      );
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      log.warn(
        { file: this.path, err: errorMessage(err), revision: rendering.revision },
        'saving the rendering failed: a restart waits for Git and a render',
      );
    }
  }
}

/** The file's content for a rendering (bundles once per digest). */
export function encodeRendering(
  r: SavedRenderingContent,
  source: SavedSourceIdentity,
): FileContent {
  const bundles: Record<string, BundleDesiredState> = {};
  const clusters: FileState[] = [];
  for (const s of r.clusters.values()) {
    for (const b of s.bundles) bundles[b.digest] ??= b;
    clusters.push({
      cluster: s.cluster,
      revision: s.revision,
      digest: s.digest,
      bundles: s.bundles.map((b) => b.digest),
      ...(s.held && s.held.length > 0 ? { held: s.held } : {}),
      ...(s.prune ? { prune: s.prune } : {}),
    });
  }
  return {
    format: LAST_RENDERING_FORMAT,
    source,
    savedAt: new Date().toISOString(),
    revision: r.revision,
    bundles,
    clusters,
    labels: [...r.labels],
    errors: r.errors.map((e) => ({
      message: e.message,
      ...(e.bundle !== undefined ? { bundle: e.bundle } : {}),
      ...(e.cluster !== undefined ? { cluster: e.cluster } : {}),
    })),
    failures: [...(r.failures ?? [])].map(([c, f]) => [c, [...f]]),
    rollouts: [...(r.rollouts ?? [])].map(([b, p]) => [b, { ...p, stageOf: [...p.stageOf] }]),
    resolvesCharts: r.resolvesCharts === true,
  };
}

/** A rendering from the file's content; throws naming what does not hold. */
export function decodeRendering(value: unknown, source: SavedSourceIdentity): LoadedRendering {
  const f = value as Partial<FileContent> | null;
  if (typeof f !== 'object' || f === null || f.format !== LAST_RENDERING_FORMAT)
    throw new Error(`not a ${LAST_RENDERING_FORMAT} file`);
  const s = f.source;
  if (
    !s ||
    s.name !== source.name ||
    s.url !== source.url ||
    s.ref !== source.ref ||
    s.path !== source.path
  )
    throw new Error('written for another source (name, url, ref or path changed)');
  if (typeof f.revision !== 'string' || typeof f.savedAt !== 'string')
    throw new Error('revision or savedAt missing');
  const savedAt = new Date(f.savedAt);
  if (Number.isNaN(savedAt.getTime())) throw new Error(`savedAt "${f.savedAt}" is not a time`);
  if (typeof f.bundles !== 'object' || f.bundles === null || !Array.isArray(f.clusters))
    throw new Error('bundles or clusters missing');
  const bundles = new Map<string, BundleDesiredState>();
  for (const [digest, b] of Object.entries(f.bundles)) {
    if (
      typeof b !== 'object' ||
      b === null ||
      !Array.isArray(b.objects) ||
      bundleDigest(b) !== digest
    )
      throw new Error(`bundle ${digest} does not match its digest`);
    bundles.set(digest, b);
  }
  const clusters = new Map<string, DesiredState>();
  for (const c of f.clusters) {
    if (typeof c?.cluster !== 'string' || !Array.isArray(c.bundles))
      throw new Error('a cluster entry has no name or bundles');
    const list = c.bundles.map((d) => {
      const b = bundles.get(d);
      if (!b) throw new Error(`cluster ${c.cluster} names bundle ${d}, which is not in the file`);
      return b;
    });
    if (desiredStateDigest(c.cluster, list, c.held ?? [], c.prune) !== c.digest)
      throw new Error(`cluster ${c.cluster} does not match its digest`);
    clusters.set(c.cluster, {
      cluster: c.cluster,
      revision: c.revision,
      digest: c.digest,
      bundles: list,
      ...(c.held ? { held: c.held } : {}),
      ...(c.prune ? { prune: c.prune } : {}),
    });
  }
  const pairs = <T>(v: unknown, what: string): [string, T][] => {
    if (!Array.isArray(v)) throw new Error(`${what} missing`);
    return v as [string, T][];
  };
  return {
    savedAt,
    rendering: {
      revision: f.revision,
      clusters,
      labels: new Map(pairs<Record<string, string>>(f.labels, 'labels')),
      errors: Array.isArray(f.errors) ? f.errors : [],
      failures: new Map(pairs<RenderFailure[]>(f.failures, 'failures')),
      rollouts: new Map(
        pairs<FileContent['rollouts'][number][1]>(f.rollouts, 'rollouts').map(([b, p]) => [
          b,
          { ...p, strategy: p.strategy ?? undefined, stageOf: new Map(p.stageOf) },
        ]),
      ),
      ...(f.resolvesCharts ? { resolvesCharts: true } : {}),
    },
  };
}
