// The render benchmark's Kustomize scenario: one shared base changed in a 1,000-cluster
// fleet. 20 plain bundles (as the main scenario) plus 10 Kustomize bundles whose overlays
// use one of two bases in apps/; the real kustomize runs (FLOTILLA_KUSTOMIZE, else PATH).
// Run by bench.js; `node hub/dist/render/bench.js shared-base` runs only this part.
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { FleetRenderer } from './renderer.js';
import { bundleYaml, repo } from './testing.js';

const KUSTOMIZE_BUNDLES = 10;
const BASE_OBJECTS = 10;
const RUNS = 3;
/** Target of a re-render after one shared base changed: as one plain bundle changed, plus its builds. */
const TARGET_MS = 1000;

function baseFiles(base: string, version: number): Record<string, string> {
  const files: Record<string, string> = {
    [`apps/${base}/kustomization.yaml`]: `resources:\n${Array.from(
      { length: BASE_OBJECTS },
      (_, i) => `  - cm-${i}.yaml\n`,
    ).join('')}`,
  };
  for (let i = 0; i < BASE_OBJECTS; i++) {
    files[`apps/${base}/cm-${i}.yaml`] = `apiVersion: v1
kind: ConfigMap
metadata:
  name: ${base}-${i}
  annotations: { region: "\${cluster.labels.region}" }
data:
${Array.from({ length: 20 }, (_, k) => `  key${k}: "value-${i}-${k}-v${version}"`).join('\n')}
`;
  }
  return files;
}

/** The Kustomize part of the fleet: bundles k-0..k-4 use apps/web-base, k-5..k-9 apps/worker-base. */
export function kustomizeFiles(webBase = 1, overlay0 = 1): Record<string, string> {
  const files = { ...baseFiles('web-base', webBase), ...baseFiles('worker-base', 1) };
  for (let b = 0; b < KUSTOMIZE_BUNDLES; b++) {
    const base = b < KUSTOMIZE_BUNDLES / 2 ? 'web-base' : 'worker-base';
    files[`bundles/k-${b}/bundle.yaml`] = bundleYaml(
      `k-${b}`,
      `  source: { kustomize: { path: overlay } }
  namespace: k-${b}
  substitute: true
  targets:
    - clusterSelector: {}
`,
    );
    files[`bundles/k-${b}/overlay/kustomization.yaml`] =
      `resources: [../../../apps/${base}]\ncommonLabels: { overlay: k-${b}-v${b === 0 ? overlay0 : 1} }\n`;
  }
  return files;
}

type Key = 'cold' | 'shared' | 'overlay' | 'plain';

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
}

/** Runs the scenario and prints its figures; `fleet` gives the plain part of the repo. */
export async function sharedBaseBench(
  fleet: (changedBundle?: number) => Record<string, string>,
): Promise<void> {
  const kustomizePath = process.env.FLOTILLA_KUSTOMIZE || 'kustomize';
  const plain = fleet();
  const trees = {
    base: repo({ ...plain, ...kustomizeFiles(1, 1) }),
    shared: repo({ ...plain, ...kustomizeFiles(2, 1) }),
    overlay: repo({ ...plain, ...kustomizeFiles(2, 2) }),
    // The main scenario's "one shared bundle changed", for comparison: no build runs.
    plainOne: repo({ ...fleet(12), ...kustomizeFiles(2, 2) }),
  };
  const rows: {
    cold: number;
    shared: number;
    overlay: number;
    plain: number;
    sharedRuns: number;
    renders: number;
    overlayRuns: number;
  }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const r = new FleetRenderer({ kustomizePath });
    let t = performance.now();
    const cold = await r.render(trees.base, 'k-1');
    const coldMs = performance.now() - t;
    if (cold.errors.length > 0) {
      console.log(
        `shared-base scenario skipped: ${cold.errors[0]?.message} (set FLOTILLA_KUSTOMIZE to the kustomize program)`,
      );
      return;
    }
    t = performance.now();
    const shared = await r.render(trees.shared, 'k-2');
    const sharedMs = performance.now() - t;
    t = performance.now();
    const overlay = await r.render(trees.overlay, 'k-3');
    const overlayMs = performance.now() - t;
    t = performance.now();
    await r.render(trees.plainOne, 'k-4');
    rows.push({
      cold: coldMs,
      shared: sharedMs,
      overlay: overlayMs,
      plain: performance.now() - t,
      sharedRuns: shared.stats.toolRuns,
      renders: shared.stats.bundleRenders,
      overlayRuns: overlay.stats.toolRuns,
    });
  }
  const load = loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  const each = (k: Key): string => rows.map((x) => x[k].toFixed(0)).join(', ');
  const first = rows[0] as (typeof rows)[number];
  console.log(
    `kustomize: ${KUSTOMIZE_BUNDLES} more bundles, 5 per shared base of ${BASE_OBJECTS} objects; ${RUNS} runs; load average ${load}`,
  );
  const line = (what: string, key: Key, target?: number): void => {
    const m = median(rows.map((x) => x[key]));
    const verdict =
      target === undefined
        ? ''
        : m <= target
          ? `  ok (target ≤ ${target} ms)`
          : `  OVER target ${target} ms`;
    console.log(
      `${what.padEnd(52)} ${m.toFixed(1).padStart(8)} ms${verdict}  (runs: ${each(key)})`,
    );
  };
  line(`cold render with the kustomize bundles`, 'cold');
  line(
    `re-render, one shared base changed (${first.sharedRuns} builds, ${first.renders} renders)`,
    'shared',
    TARGET_MS,
  );
  line(`re-render, one overlay changed (${first.overlayRuns} build)`, 'overlay');
  line('re-render, one plain bundle changed (no build)', 'plain');
}
