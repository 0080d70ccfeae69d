// helm's output kept on disk by the digest of everything helm was given, so the same
// inputs render to the same bytes after a hub restart or in a new render worker.
// `helm template` is not deterministic for many public charts: `lookup` finds nothing,
// so a chart that keeps its password in an existing Secret generates a new one
// (randAlphaNum) on every run, and charts make webhook certificates with genCA. Run again
// at the same commit, such a chart got a new digest: every cluster re-applied it, its
// Secret's password or certificate changed under the running pods, and its pre-upgrade
// hooks ran. Kept output is only read for identical inputs (files, values, capabilities,
// fetched charts, arguments), so a commit that changes any of them renders afresh.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { ToolRequest, ToolRunner } from './tools.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/** Default of KeptOutputOptions.maxBytes: 256 MiB of compressed output. */
export const DEFAULT_KEPT_OUTPUT_BYTES = 256 * 1024 * 1024;

/** Options of KeptHelmOutput. */
export interface KeptOutputOptions {
  /** Directory of the kept outputs (the hub uses `<cacheDir>/.helm-output`). */
  dir: string;
  /** Compressed bytes kept; the least recently used go first (default 256 MiB). */
  maxBytes?: number;
}

/** The digest of a helm run's inputs: what helm sees, with the temp paths left out. */
export function helmRunKey(req: ToolRequest): string {
  const h = createHash('sha256');
  const part = (s: string | Buffer): void => {
    h.update(String(Buffer.byteLength(s)));
    h.update(':');
    h.update(s);
  };
  part(req.tool);
  for (const a of req.args('\0root', '\0scratch')) part(a);
  for (const [k, v] of Object.entries(req.env ?? {}).sort()) part(`${k}=${v}`);
  for (const [path, bytes] of [...req.files].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    part(path);
    part(bytes);
  }
  for (const [name, content] of Object.entries(req.scratchFiles ?? {}).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  )) {
    part(name);
    part(content);
  }
  for (const [from, to] of req.renames ?? []) part(`${from}\0${to}`);
  return h.digest('hex');
}

/**
 * A ToolRunner that answers a helm run whose inputs were rendered before with the output
 * kept then, and keeps each new output. Other tools, and any failure to read or write
 * the directory, go to the runner it wraps: kept output is an optimisation of
 * stability, never a reason for a render to fail.
 */
export class KeptHelmOutput implements ToolRunner {
  private readonly maxBytes: number;
  private trimming: Promise<void> = Promise.resolve();

  constructor(
    private readonly inner: ToolRunner,
    private readonly opts: KeptOutputOptions,
  ) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_KEPT_OUTPUT_BYTES;
  }

  async run(req: ToolRequest): Promise<string> {
    if (req.tool !== 'helm') return this.inner.run(req);
    const file = join(this.opts.dir, `${helmRunKey(req)}.yaml.gz`);
    const kept = await this.read(file);
    if (kept !== undefined) return kept;
    const out = await this.inner.run(req);
    await this.write(file, out);
    return out;
  }

  private async read(file: string): Promise<string | undefined> {
    try {
      const text = (await gunzipAsync(await readFile(file))).toString('utf8');
      const now = new Date();
      await utimes(file, now, now).catch(() => undefined);
      return text;
    } catch {
      return undefined;
    }
  }

  private async write(file: string, out: string): Promise<void> {
    try {
      await mkdir(this.opts.dir, { recursive: true, mode: 0o700 });
      const aside = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
      await writeFile(aside, await gzipAsync(out), { mode: 0o600 });
      await rename(aside, file);
    } catch {
      return;
    }
    this.trimming = this.trimming.then(() => this.trim()).catch(() => undefined);
    await this.trimming;
  }

  // Deletes the least recently used outputs past maxBytes.
  private async trim(): Promise<void> {
    const names = (await readdir(this.opts.dir)).filter((n) => n.endsWith('.yaml.gz'));
    const entries = await Promise.all(
      names.map(async (n) => {
        const s = await stat(join(this.opts.dir, n)).catch(() => undefined);
        return { n, size: s?.size ?? 0, used: s?.mtimeMs ?? 0 };
      }),
    );
    let total = entries.reduce((sum, e) => sum + e.size, 0);
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      await rm(join(this.opts.dir, e.n), { force: true });
      total -= e.size;
    }
  }
}
