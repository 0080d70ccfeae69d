// Benchmark of the fleet renderer (a program, not a test): 1,000 clusters, 20 bundles
// of 10 objects each. Prints medians of 3 runs against the targets, in-process and
// through the hub's render worker, and how long the calling thread's event loop was
// held (the hub's streams and queries wait that long) by each, also for hostile commits.
// Then one shared Kustomize base changed in the same fleet (bench-shared-base.ts).
// Run: node --expose-gc hub/dist/render/bench.js [shared-base]
import { performance } from 'node:perf_hooks';
import type { ClusterCapabilities } from '@flotilla/common';
import type { RepoTree } from '../source/tree.js';
import { FleetRenderer } from './renderer.js';
import type { RenderResult } from './types.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';
import { WorkerRenderer } from './worker-renderer.js';
import { sharedBaseBench } from './bench-shared-base.js';

const CLUSTERS = 1000;
const BUNDLES = 20;
const OBJECTS = 10;
const TARGETS = { coldMs: 2000, oneBundleMs: 200, heapMiB: 200, bigRepoOneFileMs: 1000 };
/** Files in the large-repo scenario (the issue's 5,000-file repo). */
const BIG_REPO_FILES = 5000;
const ENVS = ['prod', 'staging', 'dev'];
const REGIONS = ['eu', 'us', 'ap'];

// Bundles 0-3 use ${cluster.name} (a distinct rendering per cluster), 4-7 a region
// label (3 renderings), the rest render once for everybody.
function manifest(b: number, i: number, version: number): string {
  const perCluster = b < 4 ? '${cluster.name}' : b < 8 ? '${cluster.labels.region}' : 'static';
  const data = Array.from(
    { length: 20 },
    (_, k) => `  key${k}: "value-${b}-${i}-${k}-v${version}"`,
  ).join('\n');
  if (i === 0) {
    return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-${b}
  labels: { app: app-${b} }
spec:
  replicas: \${vars.replicas}
  selector: { matchLabels: { app: app-${b} } }
  template:
    metadata: { labels: { app: app-${b} } }
    spec:
      containers:
        - name: app
          image: registry.example.com/app-${b}:1.${version}
          env: [{ name: CLUSTER, value: "${perCluster}" }]
          resources: { requests: { cpu: 100m, memory: 128Mi } }
`;
  }
  return `apiVersion: v1
kind: ConfigMap
metadata:
  name: cfg-${b}-${i}
  annotations: { where: "${perCluster}" }
data:
${data}
`;
}

function fleetFiles(changedBundle = -1): Record<string, string> {
  const files: Record<string, string> = {};
  for (let c = 0; c < CLUSTERS; c++) {
    const labels = { env: ENVS[c % 3] as string, region: REGIONS[Math.floor(c / 3) % 3] as string };
    files[`clusters/cluster-${c}.yaml`] = clusterYaml(
      `cluster-${c}`,
      labels,
      '  vars: { replicas: "2" }\n',
    );
  }
  for (let b = 0; b < BUNDLES; b++) {
    files[`bundles/bundle-${b}/bundle.yaml`] = bundleYaml(
      `bundle-${b}`,
      `  namespace: ns-${b}
  substitute: true
  targets:
    - clusterSelector: { matchLabels: { env: prod } }
      vars: { replicas: "3" }
    - clusterSelector: {}
`,
    );
    for (let i = 0; i < OBJECTS; i++) {
      files[`bundles/bundle-${b}/manifests/obj-${i}.yaml`] = manifest(
        b,
        i,
        b === changedBundle ? 2 : 1,
      );
    }
  }
  return files;
}

// Pads the fleet to BIG_REPO_FILES files with documentation pages inside the bundles
// (read into the tree and scanned, but not manifests).
function padded(files: Record<string, string>): Record<string, string> {
  const out = { ...files };
  for (let k = 0; Object.keys(out).length < BIG_REPO_FILES; k++)
    out[`bundles/bundle-${k % BUNDLES}/docs/page-${k}.md`] = `# page ${k}\n`;
  return out;
}

function heapUsed(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed;
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
}

async function timed(
  f: () => Promise<RenderResult>,
): Promise<{ ms: number; result: RenderResult }> {
  const t = performance.now();
  const result = await f();
  return { ms: performance.now() - t, result };
}

/** Longest time the event loop of this thread was held while f ran, in ms (a 5 ms probe). */
async function held(f: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let max = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - last - 5);
    last = now;
  }, 5);
  await f();
  // One more turn, so the probe sees a hold that lasted until f's end.
  await new Promise((resolve) => setTimeout(resolve, 20));
  clearInterval(probe);
  return max;
}

async function once(
  base: RepoTree,
  oneStatic: RepoTree,
  onePerCluster: RepoTree,
  big: [RepoTree, RepoTree],
): Promise<number[]> {
  const before = heapUsed();
  const renderer = new FleetRenderer();
  const cold = await timed(() => renderer.render(base, 'rev-1'));
  if (cold.result.errors.length > 0)
    throw new Error(`unexpected errors: ${cold.result.errors[0]?.message}`);
  const heap = heapUsed() - before;
  const warm = await timed(() => renderer.render(oneStatic, 'rev-2'));
  const warmPer = await timed(() => renderer.render(onePerCluster, 'rev-3'));
  // Every cluster reports one of three capability sets, then one cluster's change (a CRD
  // installed): the re-render a capabilities report causes.
  const sets: ClusterCapabilities[] = [0, 1, 2].map((i) => ({
    kubeVersion: `v1.3${3 + i}.0`,
    apiVersions: ['apps/v1', 'apps/v1/Deployment', 'v1', 'v1/ConfigMap'],
  }));
  const reported = new Map(
    Array.from({ length: CLUSTERS }, (_, c) => [
      `cluster-${c}`,
      sets[c % 3] as ClusterCapabilities,
    ]),
  );
  await renderer.render(onePerCluster, 'rev-3', { capabilities: reported });
  const oneChanged = new Map(reported);
  oneChanged.set('cluster-0', {
    ...sets[0]!,
    apiVersions: [...sets[0]!.apiVersions, 'example.com/v1'],
  });
  const capsChange = await timed(() =>
    renderer.render(onePerCluster, 'rev-3', { capabilities: oneChanged }),
  );
  const bigRenderer = new FleetRenderer();
  await bigRenderer.render(big[0], 'big-1');
  const bigOne = await timed(() => bigRenderer.render(big[1], 'big-2'));
  return [
    cold.ms,
    warm.ms,
    warmPer.ms,
    heap / 1024 / 1024,
    warm.result.stats.bundleRenders,
    warmPer.result.stats.bundleRenders,
    bigOne.ms,
    capsChange.ms,
  ];
}

// The hub's path: the same renders through the render worker (after every in-process
// run, so those figures are measured as before the worker existed).
async function onceInWorker(base: RepoTree, oneStatic: RepoTree): Promise<number[]> {
  const worker = new WorkerRenderer();
  try {
    let cold = 0;
    const coldHeld = await held(async () => {
      cold = (await timed(() => worker.render(base, 'rev-1'))).ms;
    });
    let warm = { ms: 0, renders: 0 };
    const warmHeld = await held(async () => {
      const r = await timed(() => worker.render(oneStatic, 'rev-2'));
      warm = { ms: r.ms, renders: r.result.stats.bundleRenders };
    });
    const inColdHeld = await held(() => new FleetRenderer().render(base, 'rev-1'));
    return [cold, warm.ms, warm.renders, inColdHeld, coldHeld, warmHeld];
  } finally {
    await worker.stop();
  }
}

// Commits from the attack report: 300,000 empty documents in one file, 100,000
// ConfigMaps, an alias bomb. Event-loop hold in-process and through the worker.
async function hostile(): Promise<
  { what: string; inProcess: number; worker: number; errors: number }[]
> {
  const base = { 'clusters/c1.yaml': clusterYaml('c1'), 'clusters/c2.yaml': clusterYaml('c2') };
  const bundle = (name: string): string =>
    bundleYaml(name, '  namespace: x\n  targets:\n    - clusterSelector: {}\n');
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    .concat(
      ['b', 'c', 'd', 'e', 'f'].map(
        (k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcde'[i]}`).join(',')}]`,
      ),
    )
    .join('\n');
  const commits: [string, Record<string, string>][] = [
    ['300,000 empty documents (1.2 MB)', { 'bundles/e/manifests/e.yaml': '---\n'.repeat(300_000) }],
    [
      '100,000 ConfigMaps (one file)',
      {
        'bundles/e/manifests/e.yaml': Array.from({ length: 100_000 }, (_, i) =>
          configMap(`cm-${i}`, { k: 'v' }),
        ).join('---\n'),
      },
    ],
    ['an alias bomb', { 'bundles/e/manifests/e.yaml': bomb }],
  ];
  const out = [];
  for (const [what, files] of commits) {
    const tree = repo({ ...base, 'bundles/e/bundle.yaml': bundle('e'), ...files });
    let errors = 0;
    const inProcess = await held(async () => {
      errors = (await new FleetRenderer().render(tree, 'r')).errors.length;
    });
    const w = new WorkerRenderer();
    await w.render(repo(base), 'warm-up');
    const worker = await held(() => w.render(tree, 'r'));
    await w.stop();
    out.push({ what, inProcess, worker, errors });
  }
  return out;
}

async function main(): Promise<void> {
  if (process.argv[2] === 'shared-base') return sharedBaseBench(() => fleetFiles());
  if (!(globalThis as { gc?: unknown }).gc)
    console.log('note: run with --expose-gc for an accurate heap figure');
  const base = repo(fleetFiles());
  const oneStatic = repo(fleetFiles(12));
  const onePerCluster = repo(fleetFiles(0));
  const runs: number[][] = [];
  const big: [RepoTree, RepoTree] = [repo(padded(fleetFiles())), repo(padded(fleetFiles(12)))];
  for (let i = 0; i < 3; i++) runs.push(await once(base, oneStatic, onePerCluster, big));
  const workerRuns: number[][] = [];
  for (let i = 0; i < 3; i++) workerRuns.push(await onceInWorker(base, oneStatic));
  const col = (i: number): number => median(runs.map((r) => r[i] as number));
  const wcol = (i: number): number => median(workerRuns.map((r) => r[i] as number));
  const line = (what: string, value: number, unit: string, target?: number): void => {
    const verdict =
      target === undefined
        ? ''
        : value <= target
          ? `  ok (target ≤ ${target} ${unit})`
          : `  OVER target ${target} ${unit}`;
    console.log(`${what.padEnd(52)} ${value.toFixed(1).padStart(8)} ${unit}${verdict}`);
  };
  console.log(
    `fleet: ${CLUSTERS} clusters, ${BUNDLES} bundles x ${OBJECTS} objects; medians of ${runs.length} runs`,
  );
  line('cold render', col(0), 'ms', TARGETS.coldMs);
  line(
    `re-render, one shared bundle changed (${col(4)} renders)`,
    col(1),
    'ms',
    TARGETS.oneBundleMs,
  );
  line(`re-render, one per-cluster bundle changed (${col(5)} renders)`, col(2), 'ms');
  line('heap held by rendered state + caches', col(3), 'MiB', TARGETS.heapMiB);
  line(
    `re-render, one file changed in a ${big[0].paths().length}-file repo`,
    col(6),
    'ms',
    TARGETS.bigRepoOneFileMs,
  );
  line('re-render after one cluster reported new capabilities', col(7), 'ms');
  console.log('(the 5,000-file target also counts the Git fetch: see the source benchmark)');
  line('cold render through the render worker', wcol(0), 'ms');
  line(
    `re-render through the worker, one shared bundle changed (${wcol(2)} renders)`,
    wcol(1),
    'ms',
  );
  console.log('event loop of the calling thread held (max), in-process vs. worker:');
  line('  cold render, in-process', wcol(3), 'ms');
  line('  cold render, worker', wcol(4), 'ms');
  line('  re-render one bundle, worker', wcol(5), 'ms');
  for (const h of await hostile()) {
    line(`  ${h.what} (${h.errors} error), in-process`, h.inProcess, 'ms');
    line(`  ${h.what}, worker`, h.worker, 'ms');
  }
  await sharedBaseBench(() => fleetFiles());
}

await main();
