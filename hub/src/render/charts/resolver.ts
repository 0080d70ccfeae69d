// Resolves a chart source to one version and its archive: through the on-disk cache when
// that version was fetched before, else from its repository or registry. Resolutions are
// kept between renders of the same commit (a capabilities re-render asks nothing of the
// network) and made again for a new commit or when the hub asks for a refresh (every
// charts.resolveInterval): a new version within a range is then a new desired state.
// Runs in the render worker; every request is bounded (http.ts).
import { ChartCache, sha256Digest } from './cache.js';
import { ChartFetchError } from './errors.js';
import { httpGet } from './http.js';
import { OciRepository, tagOf, versionOfTag } from './oci.js';
import { fetchRepoIndex } from './repo-index.js';
import type { RepoIndex } from './repo-index.js';
import { accessFor, httpAccess } from './settings.js';
import type { ChartSettings } from './settings.js';
import { isExactVersion, newestFirst, selectVersion } from './source.js';
import type { ChartSource } from './source.js';

/** A chart source resolved: the version chosen, the archive and its digest. */
export interface ResolvedChart {
  source: ChartSource;
  version: string;
  /** "sha256:<hex>" of the archive (what index.yaml and the OCI layer name). */
  digest: string;
  archive: Buffer;
}

/** What resolving needs; ChartResolver implements it, tests may fake it. */
export interface ChartFetcher {
  /** Starts a render at `revision`; `refresh` resolves ranges again at the same revision. */
  begin(revision: string, refresh: boolean): void;
  /** Resolves (once per render cycle) or rejects with ChartFetchError. */
  resolve(source: ChartSource): Promise<ResolvedChart>;
  /** Ends a render: forgets resolutions it did not use. */
  end(): void;
}

interface Held<T> {
  cycle: number;
  value: Promise<T>;
}

/** Versions listed in a "no version matches" message at most (the newest ones). */
const LISTED_VERSIONS = 8;

/** The resolver of one renderer (one render worker). */
export class ChartResolver implements ChartFetcher {
  private readonly cache: ChartCache;
  private cycle = 0;
  private revision: string | undefined;
  private readonly resolutions = new Map<string, Held<ResolvedChart>>();
  private readonly indexFetches = new Map<string, Held<RepoIndex>>();
  /** Last index of each repository, for conditional GETs. */
  private readonly indexes = new Map<string, RepoIndex>();
  private used = new Set<string>();

  constructor(
    private readonly settings: ChartSettings,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.cache = new ChartCache(settings.cacheDir, settings.maxCacheBytes);
  }

  begin(revision: string, refresh: boolean): void {
    if (revision !== this.revision || refresh) {
      this.cycle++;
      this.revision = revision;
    }
    this.used = new Set();
  }

  end(): void {
    for (const key of this.resolutions.keys())
      if (!this.used.has(key)) this.resolutions.delete(key);
    const repos = new Set([...this.used].map((k) => (JSON.parse(k) as string[])[1]));
    for (const url of this.indexes.keys()) if (!repos.has(url)) this.indexes.delete(url);
    for (const url of this.indexFetches.keys()) if (!repos.has(url)) this.indexFetches.delete(url);
  }

  resolve(source: ChartSource): Promise<ResolvedChart> {
    const key = JSON.stringify([source.kind, source.url, source.name, source.version]);
    this.used.add(key);
    const held = this.resolutions.get(key);
    if (held && held.cycle === this.cycle) return held.value;
    const value = source.kind === 'oci' ? this.resolveOci(source) : this.resolveRepo(source);
    // Awaited by the render; a failure is that render's (and cycle's) answer.
    value.catch(() => undefined);
    this.resolutions.set(key, { cycle: this.cycle, value });
    return value;
  }

  private async resolveRepo(source: ChartSource): Promise<ResolvedChart> {
    const identity = `${source.url}#${source.name}`;
    if (isExactVersion(source.version)) {
      const hit = await this.cache.get(identity, source.version);
      if (hit) return { source, version: hit.version, digest: hit.digest, archive: hit.archive };
    }
    const index = await this.index(source.url);
    const entries = index.versions(source.name);
    if (!entries || entries.length === 0)
      throw new ChartFetchError('NOT_FOUND', `chart "${source.name}" is not in ${index.what}`);
    const version = selectVersion(
      entries.map((e) => e.version),
      source.version,
    );
    if (version === undefined)
      throw noMatch(
        source,
        entries.map((e) => e.version),
      );
    const entry = entries.find((e) => e.version === version) as (typeof entries)[number];
    const expected = entry.digest ? `sha256:${entry.digest}` : undefined;
    const hit = await this.cache.get(identity, version, expected);
    if (hit) return { source, version, digest: hit.digest, archive: hit.archive };
    const url = new URL(entry.urls[0] as string, `${source.url}/`);
    const what = `chart ${source.name} ${version} (${url.href})`;
    const res = await httpGet({
      url,
      // The archive may live elsewhere (a CDN): it gets that URL's access, if any.
      access: await httpAccess(accessFor(this.settings, url.href), this.env),
      maxBytes: this.settings.maxChartBytes,
      timeoutMs: this.settings.fetchTimeoutMs,
      what,
    });
    if (res.status === 404) throw new ChartFetchError('NOT_FOUND', `${what}: not found (404)`);
    if (res.status === 401 || res.status === 403)
      throw new ChartFetchError(
        'UNAUTHENTICATED',
        `${what}: refused (${res.status}; check the credentials in the hub config, charts.repositories)`,
      );
    if (res.status !== 200)
      throw new ChartFetchError('UNAVAILABLE', `${what}: the server answered ${res.status}`);
    const digest = sha256Digest(res.body);
    if (expected !== undefined && digest !== expected)
      throw new ChartFetchError(
        'VALIDATION_FAILED',
        `${what}: the archive's digest ${digest} is not the ${expected} index.yaml gives`,
      );
    await this.cache.put({ chart: identity, version, digest, archive: res.body });
    return { source, version, digest, archive: res.body };
  }

  // One index fetch per repository and cycle, however many charts use it.
  private index(repoUrl: string): Promise<RepoIndex> {
    const held = this.indexFetches.get(repoUrl);
    if (held && held.cycle === this.cycle) return held.value;
    const value = (async () => {
      const access = await httpAccess(accessFor(this.settings, repoUrl), this.env);
      const index = await fetchRepoIndex(
        repoUrl,
        access,
        { maxBytes: this.settings.maxIndexBytes, timeoutMs: this.settings.fetchTimeoutMs },
        this.indexes.get(repoUrl),
      );
      this.indexes.set(repoUrl, index);
      return index;
    })();
    value.catch(() => undefined);
    this.indexFetches.set(repoUrl, { cycle: this.cycle, value });
    return value;
  }

  private async resolveOci(source: ChartSource): Promise<ResolvedChart> {
    const identity = source.url;
    const exact = isExactVersion(source.version);
    if (exact) {
      const hit = await this.cache.get(identity, source.version);
      if (hit) return { source, version: hit.version, digest: hit.digest, archive: hit.archive };
    }
    const entry = accessFor(this.settings, source.url);
    const repo = new OciRepository({
      reference: source.url,
      access: await httpAccess(entry, this.env),
      plainHttp: entry?.plainHttp ?? false,
      timeoutMs: this.settings.fetchTimeoutMs,
      maxListBytes: this.settings.maxIndexBytes,
      maxChartBytes: this.settings.maxChartBytes,
    });
    let version = source.version.trim();
    if (!exact) {
      const versions = (await repo.tags()).map(versionOfTag);
      const chosen = selectVersion(versions, source.version);
      if (chosen === undefined) throw noMatch(source, versions);
      version = chosen;
    }
    const layer = await repo.chartLayer(tagOf(version));
    const hit = await this.cache.get(identity, version, layer.digest);
    if (hit) return { source, version, digest: hit.digest, archive: hit.archive };
    const archive = await repo.blob(layer);
    const digest = sha256Digest(archive);
    if (digest !== layer.digest)
      throw new ChartFetchError(
        'VALIDATION_FAILED',
        `${source.url}:${version}: the chart's digest ${digest} is not the ${layer.digest} its manifest gives`,
      );
    await this.cache.put({ chart: identity, version, digest, archive });
    return { source, version, digest, archive };
  }
}

function noMatch(source: ChartSource, versions: readonly string[]): ChartFetchError {
  const wanted = source.version === '' ? 'a stable version' : `"${source.version}"`;
  const shown = newestFirst(versions).slice(0, LISTED_VERSIONS).join(', ');
  return new ChartFetchError(
    'NOT_FOUND',
    `no version of chart "${source.name}" matches ${wanted}${versions.length > 0 ? ` (versions: ${versions.length > LISTED_VERSIONS ? '…, ' : ''}${shown})` : ' (it has no versions)'}`,
  );
}
