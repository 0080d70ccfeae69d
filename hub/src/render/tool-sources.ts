// Kustomize and Helm bundles: the program's output becomes the bundle's manifests.
// kustomize runs once per bundle version (its output may use ${...} variables, like
// plain YAML, when the bundle opts in); helm runs once per distinct set of values (per-target
// values with variables substituted) and cluster capabilities, and its output is taken as is.
import { posix } from 'node:path';
import { LineCounter } from 'yaml';
import { ValidationError, digestOf, errorMessage } from '@flotilla/common';
import type { ClusterCapabilities } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import { prepareTexts } from './bundle.js';
import type { ManifestText, PreparedBundle } from './bundle.js';
import { kustomizationFile } from './kustomize-inputs.js';
import { composeDocuments } from './yaml-spec.js';
import type { RenderLimits } from './limits.js';
import { digestOfCapabilities } from './capabilities.js';
import { mergePatch } from './patch.js';
import type { BundleDef, TargetDef } from './spec.js';
import type { ToolRunner } from './tools.js';
import type { ChartSource } from './charts/source.js';
import type { ResolvedChart } from './charts/resolver.js';
import { substituteInValue } from './vars.js';
import type { VarScope } from './vars.js';

function filesOf(tree: RepoTree, paths: readonly string[]): Map<string, Buffer> {
  return new Map(paths.map((p) => [p, tree.read(p) as Buffer]));
}

/**
 * Runs `kustomize build` on a bundle version, with only its input files (kustomizeInputs)
 * copied for it; throws ValidationError.
 */
export async function prepareKustomize(
  tree: RepoTree,
  def: BundleDef,
  digest: string,
  paths: readonly string[],
  tools: ToolRunner,
  limits: RenderLimits,
): Promise<PreparedBundle> {
  const dir = def.sourceDir;
  const kfile = kustomizationFile(tree, dir);
  if (!kfile) {
    throw new ValidationError(
      `spec.source.kustomize.path "${dir || '.'}" holds no kustomization.yaml`,
      { file: def.file },
    );
  }
  const out = await tools
    .run({
      tool: 'kustomize',
      files: filesOf(tree, paths),
      args: (root) => ['build', dir === '' ? root : posix.join(root, dir)],
      errorFile: kfile,
    })
    .catch((err: unknown) => {
      const bad = err instanceof ValidationError ? brokenYaml(tree, paths) : undefined;
      if (!bad) throw err;
      throw new ValidationError(`invalid YAML: ${bad.message} (${errorMessage(err)})`, {
        file: bad.file,
        ...(bad.line !== undefined ? { line: bad.line } : {}),
        cause: err,
      });
    });
  return prepareTexts(
    def,
    digest,
    [{ path: `${kfile} (kustomize build output)`, text: out, substitute: def.substitute }],
    limits,
  );
}

/** Documents read per file when looking for the broken one (brokenYaml). */
const BROKEN_YAML_DOCUMENTS = 10_000;

/**
 * After kustomize failed: the first YAML file among its inputs that does not parse, with
 * its line. kustomize names such a file only by its base name, relative to a kustomization
 * it does not name ("in File: broken.yaml"); plain bundles give file:line. Only read on
 * failure, so a build that works costs nothing more.
 */
function brokenYaml(
  tree: RepoTree,
  paths: readonly string[],
): { file: string; line?: number; message: string } | undefined {
  for (const file of paths) {
    if (!/\.ya?ml$/.test(file)) continue;
    const text = tree.read(file)?.toString('utf8') ?? '';
    const lines = new LineCounter();
    try {
      let n = 0;
      for (const doc of composeDocuments(text, lines, 'kubernetes')) {
        const e = doc.errors[0];
        if (e)
          return {
            file,
            line: lines.linePos(e.pos[0]).line,
            message: e.message.split('\n')[0] ?? '',
          };
        if (++n >= BROKEN_YAML_DOCUMENTS) break;
      }
    } catch (err) {
      return { file, message: errorMessage(err).split('\n')[0] ?? '' };
    }
  }
  return undefined;
}

/** One `helm template` run: everything that changes its output. */
export interface HelmInvocation {
  /** The chart directory in the repo; for a remote chart, the bundle directory. */
  chart: string;
  /** A chart from a repository or registry, at the version (range) this target asks for. */
  remote: ChartSource | undefined;
  releaseName: string;
  namespace: string | undefined;
  values: Record<string, unknown>;
  valuesFiles: string[];
  /** The cluster's Kubernetes version and API versions (--kube-version, --api-versions). */
  capabilities: ClusterCapabilities;
}

/**
 * The helm run a cluster needs: bundle settings overridden by the target's, variables
 * substituted. Throws ValidationError for an undefined variable or a bad values file.
 */
export function helmInvocation(
  tree: RepoTree,
  def: BundleDef,
  target: TargetDef,
  scope: VarScope,
  capabilities: ClusterCapabilities,
): HelmInvocation {
  const base = def.helm ?? {};
  const over = target.helm ?? {};
  const values = mergePatch(base.values ?? {}, over.values ?? {}) as Record<string, unknown>;
  const files = [...(base.valuesFiles ?? []), ...(over.valuesFiles ?? [])].map(
    (f) => substituteInValue(f, def.file, target.line, scope) as string,
  );
  const bundleDir = posix.dirname(def.file);
  for (const f of files) {
    // Only the bundle's own files are in its input digest (and materialized for helm).
    if (posix.normalize(f) !== f || !f.startsWith(`${bundleDir}/`)) {
      throw new ValidationError(
        `helm values file "${f}" must be inside the bundle directory ${bundleDir}`,
        { file: def.file, line: target.line },
      );
    }
    if (tree.read(f) === undefined)
      throw new ValidationError(`helm values file "${f}" does not exist`, {
        file: def.file,
        line: target.line,
      });
  }
  const remote = remoteChart(def, target);
  const chart = over.chart ?? base.chart ?? def.sourceDir;
  if (!remote && chart !== def.sourceDir && !chart.startsWith(`${bundleDir}/`)) {
    throw new ValidationError(
      `helm chart "${chart}" must be inside the bundle directory ${bundleDir}`,
      { file: def.file, line: target.line },
    );
  }
  return {
    chart,
    remote,
    releaseName: over.releaseName ?? base.releaseName ?? def.name,
    namespace: target.namespace ?? def.namespace,
    values: substituteInValue(values, def.file, target.line, scope) as Record<string, unknown>,
    valuesFiles: files,
    capabilities,
  };
}

// The bundle's remote chart with the target's version, or undefined for a chart in the repo.
function remoteChart(def: BundleDef, target: TargetDef): ChartSource | undefined {
  const base = def.helm?.remote;
  const over = target.helm;
  if (!base) {
    if (over?.version !== undefined)
      throw new ValidationError(
        `spec.targets[${target.index}].helm.version applies to a chart from a repository or an OCI registry`,
        { file: def.file, line: target.line },
      );
    return undefined;
  }
  if (over?.chart !== undefined)
    throw new ValidationError(
      `spec.targets[${target.index}].helm.chart: the bundle's chart comes from ${base.url}; a target may change its version`,
      { file: def.file, line: target.line },
    );
  return over?.version !== undefined ? { ...base, version: over.version } : base;
}

/**
 * Cache key of a helm run over a bundle version; `fetched` are the digests of the charts
 * fetched for it (the remote chart, or a local chart's dependencies).
 */
export function helmKey(inputDigest: string, inv: HelmInvocation, fetched: string[] = []): string {
  return digestOf(
    JSON.stringify([
      inputDigest,
      ...(fetched.length > 0 ? [fetched] : []),
      inv.chart,
      inv.releaseName,
      inv.namespace ?? null,
      inv.values,
      inv.valuesFiles,
      digestOfCapabilities(inv.capabilities),
    ]),
  );
}

/** Charts fetched for one helm run (charts/resolver.ts). */
export interface FetchedCharts {
  /** The remote chart (HelmInvocation.remote), resolved. */
  chart?: ResolvedChart;
  /** Dependencies brought into a local chart's charts/ directory: repo path → bytes. */
  files?: ReadonlyMap<string, Buffer>;
}

/**
 * Runs `helm template` on the chart in the repo (its missing dependencies fetched into
 * charts/) or on a fetched chart archive; throws ValidationError. helm itself never
 * touches the network.
 */
export async function prepareHelm(
  tree: RepoTree,
  def: BundleDef,
  key: string,
  inv: HelmInvocation,
  paths: readonly string[],
  tools: ToolRunner,
  limits: RenderLimits,
  fetched: FetchedCharts = {},
): Promise<PreparedBundle> {
  if (inv.remote) return prepareRemoteHelm(tree, def, key, inv, tools, limits, fetched);
  const chartFile = inv.chart === '' ? 'Chart.yaml' : `${inv.chart}/Chart.yaml`;
  const chartYaml = tree.read(chartFile);
  if (chartYaml === undefined) {
    throw new ValidationError(`helm chart "${inv.chart || '.'}" has no Chart.yaml`, {
      file: def.file,
    });
  }
  const inputs = new Set([...paths, ...inv.valuesFiles]);
  const files = filesOf(tree, [...inputs]);
  for (const [path, bytes] of fetched.files ?? []) files.set(path, bytes);
  const out = await tools.run({
    tool: 'helm',
    files,
    scratchFiles: { 'values.json': JSON.stringify(inv.values) },
    args: (root, scratch) =>
      templateArgs(inv, inv.chart === '' ? root : posix.join(root, inv.chart), root, scratch),
    errorFile: chartFile,
    renames: helmRenames(chartYaml.toString('utf8'), inv.chart),
  });
  return prepareTexts(
    def,
    key,
    splitHelmOutput(out, inv.chart, `${chartFile} (helm template output)`),
    limits,
  );
}

// A fetched chart: its archive goes to the scratch dir, the bundle gives values files only.
async function prepareRemoteHelm(
  tree: RepoTree,
  def: BundleDef,
  key: string,
  inv: HelmInvocation,
  tools: ToolRunner,
  limits: RenderLimits,
  fetched: FetchedCharts,
): Promise<PreparedBundle> {
  const c = fetched.chart;
  if (!c) throw new ValidationError('internal: the chart was not fetched', { file: def.file });
  const label = `${c.source.name}-${c.version}`;
  const out = await tools.run({
    tool: 'helm',
    files: filesOf(tree, inv.valuesFiles),
    scratchFiles: { 'values.json': JSON.stringify(inv.values), 'chart.tgz': c.archive },
    args: (root, scratch) => templateArgs(inv, posix.join(scratch, 'chart.tgz'), root, scratch),
    errorFile: def.file,
    renames: [[c.source.name, label]],
  });
  const prepared = prepareTexts(
    def,
    key,
    splitHelmOutput(out, label, `${def.file} (helm template output of ${label})`),
    limits,
  );
  prepared.chart = {
    repo: c.source.url,
    name: c.source.name,
    version: c.version,
    digest: c.digest,
  };
  return prepared;
}

function templateArgs(
  inv: HelmInvocation,
  chartPath: string,
  root: string,
  scratch: string,
): string[] {
  return [
    'template',
    inv.releaseName,
    chartPath,
    ...(inv.namespace !== undefined ? ['--namespace', inv.namespace] : []),
    '--include-crds',
    '--skip-tests',
    // Without it, helm assumes its own build's version (v1.20.0 for a source build).
    '--kube-version',
    inv.capabilities.kubeVersion,
    ...apiVersionArgs(inv.capabilities.apiVersions),
    ...inv.valuesFiles.flatMap((f) => ['--values', posix.join(root, f)]),
    '--values',
    posix.join(scratch, 'values.json'),
  ];
}

/**
 * Helm names a chart's templates "<chart name>/templates/x.yaml" in its errors (with the
 * line): the rename to the chart's directory in the repo.
 */
export function helmRenames(chartYaml: string, chartDir: string): [string, string][] {
  const name = /^name:[ \t]*["']?([A-Za-z0-9._-]+)["']?[ \t]*(?:#.*)?$/m.exec(chartYaml)?.[1];
  return name && chartDir !== '' && name !== chartDir ? [[name, chartDir]] : [];
}

/**
 * --api-versions arguments: helm reads each as a comma-separated list, so entries (never
 * holding commas) are joined into arguments of at most 32 KiB, well below the kernel's
 * 128 KiB limit per argument; "=" keeps a value from ever being read as a flag.
 */
export function apiVersionArgs(entries: readonly string[]): string[] {
  const args: string[] = [];
  let current: string[] = [];
  let size = 0;
  for (const e of entries) {
    if (size + e.length + 1 > 32 * 1024 && current.length > 0) {
      args.push(`--api-versions=${current.join(',')}`);
      current = [];
      size = 0;
    }
    current.push(e);
    size += e.length + 1;
  }
  if (current.length > 0) args.push(`--api-versions=${current.join(',')}`);
  return args;
}

/**
 * Splits helm's output at its "# Source: <chart>/templates/x.yaml" markers, so an error
 * names the template that produced the bad document (lines count in its rendered text).
 */
export function splitHelmOutput(out: string, chartDir: string, fallback: string): ManifestText[] {
  const texts: ManifestText[] = [];
  // A line that is exactly "---" separates documents (block scalars are indented).
  for (const chunk of out.split(/^---[ \t]*$/m)) {
    if (chunk.trim() === '') continue;
    const m = /^# Source: [^/\n]+\/(.+)$/m.exec(chunk);
    const template = m
      ? `${chartDir === '' ? '' : `${chartDir}/`}${(m[1] as string).trim()}`
      : undefined;
    texts.push({
      path: template ? `${template} (as rendered by helm)` : fallback,
      text: chunk.replace(/^\r?\n/, ''),
      substitute: false,
    });
  }
  return texts;
}
