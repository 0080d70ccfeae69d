// A chart repository's index.yaml: fetched within its size limit (a conditional GET when
// an earlier copy is held, so an unchanged index is neither downloaded nor read again)
// and read only as far as resolution needs. A large index (tens of MiB, thousands of
// charts) takes seconds to parse as a whole, which would hold the render worker: the
// block of the one chart asked for is cut out of helm's block-style layout and parsed
// alone; an index in another layout (JSON, flow style) is parsed whole, once. It is read
// with js-yaml (several times faster than the yaml package on large files), loaded only
// when a fleet uses a chart repository.
import type JsYamlModule from 'js-yaml';
import { ChartFetchError } from './errors.js';
import { httpGet } from './http.js';
import type { HttpAccess } from './http.js';

/** One version of a chart as the index lists it. */
export interface IndexEntry {
  version: string;
  /** Archive URLs, as written (relative to the repository URL or absolute). */
  urls: string[];
  /** sha256 of the archive, hex, when the index gives one. */
  digest: string | undefined;
}

/** Limits of one index fetch. */
export interface IndexLimits {
  maxBytes: number;
  timeoutMs: number;
}

/** A fetched index: its versions per chart (read on demand) and its validators. */
export class RepoIndex {
  private readonly parsed = new Map<string, readonly IndexEntry[] | undefined>();
  private whole: Map<string, IndexEntry[]> | undefined;

  constructor(
    private readonly yaml: JsYaml,
    private readonly text: string,
    readonly what: string,
    readonly etag: string | undefined,
    readonly lastModified: string | undefined,
  ) {}

  /** The versions of chart `name`, or undefined when the index does not list it. */
  versions(name: string): readonly IndexEntry[] | undefined {
    if (this.parsed.has(name)) return this.parsed.get(name);
    let found: readonly IndexEntry[] | undefined;
    const block = this.whole ? undefined : chartBlock(this.text, name);
    if (block === undefined) {
      this.whole ??= parseWhole(this.yaml, this.text, this.what);
      found = this.whole.get(name);
    } else if (block !== null) {
      found = entriesOf(load(this.yaml, block, this.what)?.[name as keyof object]);
    }
    this.parsed.set(name, found);
    return found;
  }
}

/** Fetches `<repo>/index.yaml`; `held` is reused when the server answers 304. */
export async function fetchRepoIndex(
  repoUrl: string,
  access: HttpAccess,
  limits: IndexLimits,
  held: RepoIndex | undefined,
): Promise<RepoIndex> {
  const what = `index.yaml of ${repoUrl}`;
  const headers: Record<string, string> = { accept: 'application/x-yaml, text/yaml, */*' };
  if (held?.etag) headers['if-none-match'] = held.etag;
  if (held?.lastModified) headers['if-modified-since'] = held.lastModified;
  const res = await httpGet({
    url: new URL(`${repoUrl}/index.yaml`),
    access,
    maxBytes: limits.maxBytes,
    timeoutMs: limits.timeoutMs,
    headers,
    what,
  });
  if (res.status === 304 && held) return held;
  if (res.status === 401 || res.status === 403)
    throw new ChartFetchError(
      'UNAUTHENTICATED',
      `${what}: the repository answered ${res.status} (check its credentials in the hub config, charts.repositories)`,
    );
  if (res.status === 404)
    throw new ChartFetchError(
      'NOT_FOUND',
      `${what}: not found (404): is ${repoUrl} a chart repository?`,
    );
  if (res.status !== 200)
    throw new ChartFetchError('UNAVAILABLE', `${what}: the repository answered ${res.status}`);
  const text = res.body.toString('utf8');
  if (!/^entries:/m.test(text) && !/"entries"\s*:/.test(text))
    throw new ChartFetchError(
      'VALIDATION_FAILED',
      `${what} has no "entries": not a chart repository index`,
    );
  return new RepoIndex(
    (await import('js-yaml')).default,
    text,
    what,
    headerValue(res.headers.etag),
    headerValue(res.headers['last-modified']),
  );
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/**
 * The text of `name:` and its list under the top-level `entries:` of a block-style
 * index (helm's layout), null when that layout has no such chart, undefined when the
 * text is not in that layout.
 */
export function chartBlock(text: string, name: string): string | null | undefined {
  const entries = /^entries:[ \t]*\r?\n/m.exec(text);
  if (!entries) return undefined;
  const rest = text.slice(entries.index + entries[0].length);
  const first = /^( +)[^\s#]/m.exec(rest);
  if (!first) return undefined;
  const indent = (first[1] as string).length;
  const pad = ' '.repeat(indent);
  // A key line of this chart: plain or quoted, at the children's indent.
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const key = new RegExp(`^${pad}(?:${esc}|"${esc}"|'${esc}'):[ \\t]*\\r?$`, 'm');
  const m = key.exec(rest);
  if (!m) return null;
  const lines = rest.slice(m.index).split('\n');
  const out = [(lines[0] as string).slice(indent)];
  for (const line of lines.slice(1)) {
    const content = line.trimStart();
    if (content !== '' && !content.startsWith('#')) {
      const at = line.length - content.length;
      // The block ends at the next key of entries, or at anything less indented.
      if (at < indent || (at === indent && !content.startsWith('-'))) break;
    }
    out.push(line.slice(Math.min(indent, line.length - content.length)));
  }
  return out.join('\n');
}

type JsYaml = typeof JsYamlModule;

function load(yaml: JsYaml, text: string, what: string): Record<string, unknown> | undefined {
  try {
    // The core schema: no custom types; js-yaml bounds alias expansion.
    const doc = yaml.load(text, { schema: yaml.CORE_SCHEMA, json: true });
    return typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>) : undefined;
  } catch (err) {
    throw new ChartFetchError(
      'VALIDATION_FAILED',
      `${what} is not valid YAML: ${(err as Error).message.split('\n')[0]}`,
    );
  }
}

function parseWhole(yaml: JsYaml, text: string, what: string): Map<string, IndexEntry[]> {
  const entries = load(yaml, text, what)?.entries;
  if (typeof entries !== 'object' || entries === null || Array.isArray(entries))
    throw new ChartFetchError(
      'VALIDATION_FAILED',
      `${what} has no "entries" mapping: not a chart repository index`,
    );
  const out = new Map<string, IndexEntry[]>();
  for (const [name, list] of Object.entries(entries as Record<string, unknown>))
    out.set(name, entriesOf(list) ?? []);
  return out;
}

function entriesOf(list: unknown): IndexEntry[] | undefined {
  if (!Array.isArray(list)) return undefined;
  const versions: IndexEntry[] = [];
  for (const e of list as unknown[]) {
    if (typeof e !== 'object' || e === null) continue;
    const { version, urls, digest } = e as Record<string, unknown>;
    if (typeof version !== 'string' || !Array.isArray(urls)) continue;
    const strings = urls.filter((u): u is string => typeof u === 'string' && u !== '');
    if (strings.length === 0) continue;
    versions.push({
      version,
      urls: strings,
      digest: typeof digest === 'string' && /^[0-9a-f]{64}$/.test(digest) ? digest : undefined,
    });
  }
  return versions;
}
