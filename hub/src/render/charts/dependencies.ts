// `helm dependency build` for a chart kept in the fleet repo: every dependency its
// Chart.yaml declares that is not vendored in its charts/ directory is fetched from its
// repository (https:// or oci://), at the version Chart.lock pins when it lists that
// dependency, else the newest version matching the range; a file:// dependency inside
// the bundle directory is copied in. What cannot be had is an error of the bundle.
import { posix } from 'node:path';
import { parse } from 'yaml';
import { ValidationError } from '@flotilla/common';
import type { RepoTree } from '../../source/tree.js';
import { chartSource } from './source.js';
import type { ChartSource } from './source.js';

/** A dependency to bring into charts/: from a repository, or a directory of the bundle. */
export type MissingDependency =
  { name: string; remote: ChartSource } | { name: string; localDir: string };

interface DeclaredDependency {
  name: string;
  version: string;
  repository: string;
}

/**
 * The dependencies of the chart in `chartDir` (a repo path) that charts/ lacks; throws
 * ValidationError naming Chart.yaml for a dependency that cannot be fetched.
 */
export function missingDependencies(
  tree: RepoTree,
  chartDir: string,
  bundleDir: string,
): MissingDependency[] {
  const at = (p: string): string => (chartDir === '' ? p : `${chartDir}/${p}`);
  const chartFile = at('Chart.yaml');
  const declared = readDependencies(tree, chartFile, 'dependencies');
  if (declared.length === 0) return [];
  const locked = new Map(
    readDependencies(tree, at('Chart.lock'), 'dependencies').map((d) => [d.name, d]),
  );
  const vendored = tree.paths().filter((p) => p.startsWith(`${at('charts')}/`));
  const out: MissingDependency[] = [];
  for (const dep of declared) {
    const inCharts =
      vendored.includes(at(`charts/${dep.name}/Chart.yaml`)) ||
      vendored.some((p) =>
        new RegExp(`^${escape(at('charts'))}/${escape(dep.name)}-[^/]*\\.tgz$`).test(p),
      );
    if (inCharts) continue;
    const fail = (problem: string): never => {
      throw new ValidationError(`dependency "${dep.name}": ${problem}`, { file: chartFile });
    };
    const repo = dep.repository;
    if (repo === '')
      fail('is not in charts/ and names no repository (vendor it, or give its repository URL)');
    if (repo.startsWith('@') || repo.startsWith('alias:'))
      fail(`repository "${repo}" is a name from \`helm repo add\`: give the repository's URL`);
    if (repo.startsWith('file://')) {
      const dir = posix.normalize(posix.join(chartDir, repo.slice('file://'.length)));
      if (!dir.startsWith(`${bundleDir}/`) && dir !== bundleDir)
        fail(`${repo} must stay inside the bundle directory ${bundleDir}`);
      if (tree.read(`${dir}/Chart.yaml`) === undefined) fail(`${repo} holds no Chart.yaml`);
      out.push({ name: dep.name, localDir: dir });
      continue;
    }
    const lock = locked.get(dep.name);
    const version =
      lock && lock.repository === repo && lock.version !== '' ? lock.version : dep.version;
    const source = chartSource(repo, dep.name, version === '' ? undefined : version);
    if (typeof source === 'string') fail(source);
    out.push({ name: dep.name, remote: source as ChartSource });
  }
  return out;
}

function readDependencies(tree: RepoTree, file: string, key: string): DeclaredDependency[] {
  const bytes = tree.read(file);
  if (bytes === undefined) return [];
  let doc: unknown;
  try {
    doc = parse(bytes.toString('utf8'), { maxAliasCount: 100 });
  } catch (err) {
    throw new ValidationError(`not valid YAML: ${(err as Error).message.split('\n')[0]}`, {
      file,
    });
  }
  const list = (doc as Record<string, unknown> | null)?.[key];
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new ValidationError(`${key} must be a list`, { file });
  return list.map((d: unknown, i) => {
    const r = (typeof d === 'object' && d !== null ? d : {}) as Record<string, unknown>;
    if (typeof r.name !== 'string' || r.name === '')
      throw new ValidationError(`${key}[${i}] needs a name`, { file });
    return {
      name: r.name,
      version: r.version === undefined || r.version === null ? '' : String(r.version),
      repository: typeof r.repository === 'string' ? r.repository.trim() : '',
    };
  });
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
