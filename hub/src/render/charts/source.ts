// A chart that lives outside the fleet repo: in a chart repository (index.yaml over
// HTTP(S)) or an OCI registry, with a version or a semver range. Checked when bundle.yaml
// is parsed, so a bad URL or range is an error with file:line before anything is fetched.
import { createRequire } from 'node:module';
import type SemverModule from 'semver';

// Loaded on first use: most fleets have no remote chart, and every module the render
// worker loads at start counts against its heap limit (render.workerMaxHeapBytes).
let loaded: typeof SemverModule | undefined;
function semverLib(): typeof SemverModule {
  loaded ??= createRequire(import.meta.url)('semver') as typeof SemverModule;
  return loaded;
}

/** Where a chart comes from and which versions are acceptable. */
export interface ChartSource {
  /** A chart repository (index.yaml) or an OCI registry. */
  kind: 'repo' | 'oci';
  /** repo: the repository URL without trailing "/"; oci: the chart's reference "oci://host[:port]/path/name". */
  url: string;
  /** The chart's name (the last path segment for OCI). */
  name: string;
  /** The version or range as written ("" = the newest stable version). */
  version: string;
}

const CHART_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * The ChartSource of `repo` + `chart` (+ `version`), or an error message. `repo` may be
 * an https://, http:// or oci:// URL; without it, `chart` may be a full oci:// reference.
 */
export function chartSource(
  repo: string | undefined,
  chart: string,
  version: string | undefined,
): ChartSource | string {
  const range = version ?? '';
  if (range !== '' && !versionRange(range))
    return `version "${range}" is neither a version (6.5.0) nor a semver range (6.x, ^6.1, >=6.0.0 <7.0.0)`;
  if (repo === undefined) {
    if (!chart.startsWith('oci://')) return 'not a remote chart';
    const url = checkUrl(chart, ['oci:']);
    if (typeof url === 'string') return url;
    const name = url.pathname.split('/').pop() ?? '';
    if (url.pathname.split('/').filter((s) => s !== '').length < 1 || !CHART_NAME.test(name))
      return `chart "${chart}" must name a chart: oci://registry/path/NAME`;
    return {
      kind: 'oci',
      url: `oci://${url.host}${url.pathname.replace(/\/+$/, '')}`,
      name,
      version: range,
    };
  }
  const url = checkUrl(repo, ['https:', 'http:', 'oci:']);
  if (typeof url === 'string') return url;
  if (!CHART_NAME.test(chart))
    return `chart "${chart}" must be a chart name from the repository (letters, digits, ".", "_", "-")`;
  const base = `${url.protocol}//${url.host}${url.pathname.replace(/\/+$/, '')}`;
  if (url.protocol === 'oci:')
    return { kind: 'oci', url: `${base}/${chart}`, name: chart, version: range };
  return { kind: 'repo', url: base, name: chart, version: range };
}

function checkUrl(text: string, protocols: string[]): URL | string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `"${text}" is not a URL`;
  }
  if (!protocols.includes(url.protocol))
    return `"${text}" must start with ${protocols.map((p) => `${p}//`).join(', ')}`;
  if (url.username !== '' || url.password !== '')
    return 'credentials never go in Git: put them in the hub config (charts.repositories, docs/install.md)';
  if (url.search !== '' || url.hash !== '') return `"${text}" must not have a query or fragment`;
  if (url.host === '') return `"${text}" has no host`;
  return url;
}

/** Helm's range syntax ("6.x", ">= 1.2, < 2") as a node-semver range, or undefined when invalid. */
export function versionRange(text: string): string | undefined {
  // Masterminds (helm) joins AND-ed comparators with commas; node-semver with spaces.
  const range = text.trim().replace(/\s*,\s*/g, ' ');
  if (range === '') return undefined;
  return semverLib().validRange(range) === null ? undefined : range;
}

/**
 * The version `wanted` selects among `available`, as helm does: an exact version must be
 * there; a range takes the highest match (prereleases only when the range names one);
 * "" takes the newest stable version. Entries that are not semver are ignored.
 */
export function selectVersion(available: readonly string[], wanted: string): string | undefined {
  const parsed = new Map<string, string>();
  for (const v of available) {
    const clean = semverLib().valid(v);
    if (clean !== null && !parsed.has(clean)) parsed.set(clean, v);
  }
  const versions = [...parsed.keys()];
  const range = wanted === '' ? '*' : versionRange(wanted);
  if (range === undefined) return undefined;
  const best = semverLib().maxSatisfying(versions, range);
  return best === null ? undefined : parsed.get(best);
}

/** The semver entries of a list, newest first, without duplicates. */
export function newestFirst(versions: readonly string[]): string[] {
  const valid = [...new Set(versions)].filter((v) => semverLib().valid(v) !== null);
  return valid.sort((a, b) => semverLib().rcompare(a, b));
}

/** True when `wanted` names one exact version (so a cached chart needs no repository). */
export function isExactVersion(wanted: string): boolean {
  return semverLib().valid(wanted.trim()) !== null && !/^[=v]/.test(wanted.trim());
}

/** How a chart is shown: "podinfo 6.x from https://charts.example.com". */
export function describeSource(s: ChartSource): string {
  const v = s.version === '' ? '' : ` ${s.version}`;
  return s.kind === 'oci' ? `chart ${s.url}${v}` : `chart ${s.name}${v} from ${s.url}`;
}
