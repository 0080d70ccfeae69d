// Helm charts in OCI registries, over the OCI distribution API: tags (a chart version is a
// tag, "+" written as "_"), the manifest of a tag, and its chart layer (a blob addressed
// by its sha256, checked on arrival). Registries authenticate with HTTP Basic or with the
// token flow (a 401 names a token service, which gives a short-lived bearer token for the
// repository in exchange for the configured credentials, or anonymously).
import { ChartFetchError } from './errors.js';
import { httpGet } from './http.js';
import type { HttpAccess, HttpResponse } from './http.js';

/** The media type of a Helm chart's content layer. */
export const HELM_CHART_LAYER = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';

const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** Largest manifest accepted (4 MiB, the distribution spec's recommendation). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Pages of a tag list followed at most (100). */
export const MAX_TAG_PAGES = 100;

/** One registry repository (a chart), how to reach it, and its limits. */
export interface OciTarget {
  /** "oci://host[:port]/path/name". */
  reference: string;
  access: HttpAccess & { basic?: { username: string; password: string } };
  plainHttp: boolean;
  timeoutMs: number;
  /** Bytes of tag lists, all pages together. */
  maxListBytes: number;
  maxChartBytes: number;
}

/** A chart layer as the manifest names it. */
export interface OciChartLayer {
  /** "sha256:<hex>". */
  digest: string;
  size: number;
}

/** Talks to one repository of one registry; keeps its bearer token for its calls. */
export class OciRepository {
  private readonly base: string;
  private readonly repo: string;
  private bearer: string | undefined;

  constructor(private readonly t: OciTarget) {
    const url = new URL(t.reference.replace(/^oci:/, 'https:'));
    this.base = `${t.plainHttp ? 'http' : 'https'}://${url.host}`;
    this.repo = url.pathname.replace(/^\/+|\/+$/g, '');
  }

  /** Every tag of the repository (all pages, within maxListBytes). */
  async tags(): Promise<string[]> {
    const tags: string[] = [];
    let path: string | undefined = `/v2/${this.repo}/tags/list?n=1000`;
    let budget = this.t.maxListBytes;
    for (let page = 0; path && page < MAX_TAG_PAGES; page++) {
      const res = await this.get(path, 'tags', budget, { accept: 'application/json' });
      budget -= res.body.length;
      if (res.status === 404)
        throw new ChartFetchError(
          'NOT_FOUND',
          `${this.t.reference}: no such repository in the registry (404)`,
        );
      this.expectOk(res, 'tag list');
      const body = this.json(res, 'tag list') as { tags?: unknown };
      if (Array.isArray(body.tags))
        for (const tag of body.tags) if (typeof tag === 'string') tags.push(tag);
      path = nextPage(res.headers.link);
    }
    return tags;
  }

  /** The chart layer of tag `tag`; NOT_FOUND when there is no such tag. */
  async chartLayer(tag: string): Promise<OciChartLayer> {
    const res = await this.get(
      `/v2/${this.repo}/manifests/${tag}`,
      `manifest ${tag}`,
      MAX_MANIFEST_BYTES,
      {
        accept: MANIFEST_TYPES,
      },
    );
    if (res.status === 404)
      throw new ChartFetchError(
        'NOT_FOUND',
        `${this.t.reference}: version ${tag.replace(/_/g, '+')} not found in the registry`,
      );
    this.expectOk(res, `manifest of ${tag}`);
    const manifest = this.json(res, `manifest of ${tag}`) as { layers?: unknown };
    const layers = Array.isArray(manifest.layers)
      ? (manifest.layers as Record<string, unknown>[])
      : [];
    const layer = layers.find((l) => l.mediaType === HELM_CHART_LAYER);
    if (!layer || typeof layer.digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(layer.digest))
      throw new ChartFetchError(
        'VALIDATION_FAILED',
        `${this.t.reference}:${tag} is not a Helm chart (no ${HELM_CHART_LAYER} layer)`,
      );
    return { digest: layer.digest, size: typeof layer.size === 'number' ? layer.size : 0 };
  }

  /** The chart archive of a layer, its sha256 checked. */
  async blob(layer: OciChartLayer): Promise<Buffer> {
    if (layer.size > this.t.maxChartBytes)
      throw new ChartFetchError(
        'TOO_LARGE',
        `${this.t.reference}: the chart is ${layer.size} bytes, over the limit of ${this.t.maxChartBytes} bytes (charts.maxChartBytes)`,
      );
    const res = await this.get(
      `/v2/${this.repo}/blobs/${layer.digest}`,
      'chart',
      this.t.maxChartBytes,
      {},
    );
    this.expectOk(res, 'chart blob');
    return res.body;
  }

  private expectOk(res: HttpResponse, what: string): void {
    if (res.status === 401 || res.status === 403)
      throw new ChartFetchError(
        'UNAUTHENTICATED',
        `${this.t.reference}: the registry refused the ${what} (${res.status}; check its credentials in the hub config, charts.repositories)`,
      );
    if (res.status !== 200)
      throw new ChartFetchError(
        'UNAVAILABLE',
        `${this.t.reference}: the registry answered ${res.status} for the ${what}`,
      );
  }

  private json(res: HttpResponse, what: string): Record<string, unknown> {
    try {
      const v: unknown = JSON.parse(res.body.toString('utf8'));
      if (typeof v === 'object' && v !== null) return v as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw new ChartFetchError(
      'VALIDATION_FAILED',
      `${this.t.reference}: the ${what} is not a JSON object`,
    );
  }

  // One GET; on a 401 with a challenge, authenticates as asked and tries once more.
  private async get(
    path: string,
    what: string,
    maxBytes: number,
    headers: Record<string, string>,
  ): Promise<HttpResponse> {
    const send = (authorization: string | undefined): Promise<HttpResponse> =>
      httpGet({
        url: new URL(path, this.base),
        access: { ...this.t.access, authorization },
        maxBytes: Math.max(0, maxBytes),
        timeoutMs: this.t.timeoutMs,
        headers,
        what: `${this.t.reference} (${what})`,
      });
    const first = await send(this.bearer ? `Bearer ${this.bearer}` : this.t.access.authorization);
    if (first.status !== 401) return first;
    const challenge = parseChallenge(first.headers['www-authenticate']);
    if (challenge?.scheme === 'basic') {
      if (!this.t.access.basic) return first;
      return send(this.t.access.authorization);
    }
    if (challenge?.scheme !== 'bearer' || !challenge.params.realm) return first;
    this.bearer = await this.token(challenge.params);
    return send(`Bearer ${this.bearer}`);
  }

  // The token flow of the distribution spec; the token is never put in a message.
  private async token(params: Record<string, string>): Promise<string> {
    const realm = new URL(params.realm as string);
    if (params.service) realm.searchParams.set('service', params.service);
    realm.searchParams.set('scope', params.scope ?? `repository:${this.repo}:pull`);
    const basic = this.t.access.basic;
    const res = await httpGet({
      url: realm,
      access: {
        ...this.t.access,
        authorization: basic
          ? `Basic ${Buffer.from(`${basic.username}:${basic.password}`).toString('base64')}`
          : undefined,
      },
      maxBytes: 1024 * 1024,
      timeoutMs: this.t.timeoutMs,
      headers: { accept: 'application/json' },
      what: `${this.t.reference} (token service ${realm.origin})`,
    });
    if (res.status !== 200)
      throw new ChartFetchError(
        'UNAUTHENTICATED',
        `${this.t.reference}: the registry's token service answered ${res.status} (check the credentials in the hub config, charts.repositories)`,
      );
    const body = this.json(res, 'token answer') as { token?: unknown; access_token?: unknown };
    const token = typeof body.token === 'string' ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '')
      throw new ChartFetchError(
        'UNAUTHENTICATED',
        `${this.t.reference}: the registry's token service gave no token`,
      );
    return token;
  }
}

/** A WWW-Authenticate challenge: scheme (lower case) and parameters. */
export function parseChallenge(
  header: string | string[] | undefined,
): { scheme: string; params: Record<string, string> } | undefined {
  const text = Array.isArray(header) ? header[0] : header;
  if (!text) return undefined;
  const m = /^\s*(\S+)\s*(.*)$/.exec(text);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of (m[2] as string).matchAll(/([A-Za-z_]+)="([^"]*)"/g))
    params[(p[1] as string).toLowerCase()] = p[2] as string;
  return { scheme: (m[1] as string).toLowerCase(), params };
}

// The next page of a tag list: Link: </v2/x/tags/list?n=1000&last=y>; rel="next".
function nextPage(link: string | string[] | undefined): string | undefined {
  const text = Array.isArray(link) ? link.join(',') : link;
  const m = text ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(text) : null;
  if (!m) return undefined;
  const target = m[1] as string;
  // Only a path on the same registry: a Link to elsewhere is not followed.
  return target.startsWith('/') ? target : undefined;
}

/** The tag of a chart version (OCI tags cannot hold "+"). */
export function tagOf(version: string): string {
  return version.replace(/\+/g, '_');
}

/** The chart version of a tag. */
export function versionOfTag(tag: string): string {
  return tag.replace(/_/g, '+');
}
