// Benchmark (a program, not a test): fetch and re-render of a one-file change in a
// 5,000-file fleet repo, through the real path — git CLI push to `git http-backend`,
// GitSource fetch (list refs + incremental depth-1 pack), commit tree read, the hub's
// renderer (WorkerRenderer: the tree crosses to the render worker thread).
// Prints the median of several runs and each stage, against the target (≤ 1 s).
// Run: node integration-tests/dist/bench/bench-source-fetch.js [runs=5]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { silentLogger } from '@flotilla/common';
import { GitSource, WorkerRenderer } from '@flotilla/hub';
import { createWorkRepo, startGitServer } from '@flotilla/test-env';

const CLUSTERS = 1000;
const BUNDLES = 20;
/** Manifests per bundle: 1,000 cluster files + 20 bundle.yaml + 20 × 199 = 5,000 files. */
const MANIFESTS = 199;
const TARGET_MS = 1000;

function fleetFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (let c = 0; c < CLUSTERS; c++) {
    files[`clusters/cluster-${c}.yaml`] = `apiVersion: flotilla.dev/v1alpha1
kind: Cluster
metadata:
  name: cluster-${c}
  labels: { env: ${['prod', 'staging', 'dev'][c % 3]}, region: ${['eu', 'us', 'ap'][Math.floor(c / 3) % 3]} }
`;
  }
  for (let b = 0; b < BUNDLES; b++) {
    files[`bundles/bundle-${b}/bundle.yaml`] = `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: bundle-${b}
spec:
  namespace: ns-${b}
  targets:
    - clusterSelector: {}
`;
    for (let i = 0; i < MANIFESTS; i++)
      files[`bundles/bundle-${b}/manifests/cm-${i}.yaml`] = configMap(b, i, 1);
  }
  return files;
}

function configMap(b: number, i: number, version: number): string {
  const data = Array.from(
    { length: 8 },
    (_, k) => `  key${k}: "value-${b}-${i}-${k}-v${version}"`,
  ).join('\n');
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${b}-${i}\ndata:\n${data}\n`;
}

const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 5);
  const git = await startGitServer();
  const cacheDir = await mkdtemp(join(tmpdir(), 'flotilla-bench-fetch-'));
  try {
    const url = await git.createRepo('big-fleet');
    const work = await createWorkRepo(url);
    const files = fleetFiles();
    await work.writeFiles(files);
    await work.commitAndPush('5,000 files');
    const src = new GitSource({ name: 'bench', url, cacheDir, logger: silentLogger() });
    const renderer = new WorkerRenderer();
    const t0 = performance.now();
    const first = await src.poll();
    const tree0 = await first!.readTree();
    const cold = await renderer.render(tree0, first!.revision);
    const coldMs = performance.now() - t0;
    if (tree0.paths().length !== Object.keys(files).length)
      throw new Error(`tree has ${tree0.paths().length} files`);
    if (cold.errors.length > 0) throw new Error(`render errors: ${cold.errors[0]?.message}`);

    const total: number[] = [];
    const fetchMs: number[] = [];
    const treeMs: number[] = [];
    const renderMs: number[] = [];
    for (let r = 0; r < runs; r++) {
      const bundle = r % BUNDLES;
      await work.writeFiles({
        [`bundles/bundle-${bundle}/manifests/cm-7.yaml`]: configMap(bundle, 7, r + 2),
      });
      const sha = await work.commitAndPush(`change ${r}`);
      const a = performance.now();
      const snap = await src.poll();
      const b = performance.now();
      const tree = await snap!.readTree();
      const c = performance.now();
      const result = await renderer.render(tree, snap!.revision);
      const d = performance.now();
      if (snap?.revision !== sha) throw new Error(`fetched ${snap?.revision}, pushed ${sha}`);
      if (result.errors.length > 0) throw new Error(`render errors: ${result.errors[0]?.message}`);
      fetchMs.push(b - a);
      treeMs.push(c - b);
      renderMs.push(d - c);
      total.push(d - a);
    }
    await work.dispose();
    await renderer.stop();
    const m = median(total);
    console.log(
      `repo: ${Object.keys(files).length} files (${CLUSTERS} clusters, ${BUNDLES} bundles x ${MANIFESTS} manifests); ${runs} runs`,
    );
    console.log(
      `first clone + full render (cold)                       ${coldMs.toFixed(0).padStart(6)} ms`,
    );
    console.log(
      `  fetch (list refs + pack)           median ${median(fetchMs).toFixed(0).padStart(6)} ms`,
    );
    console.log(
      `  read commit tree                   median ${median(treeMs).toFixed(0).padStart(6)} ms`,
    );
    console.log(
      `  re-render                          median ${median(renderMs).toFixed(0).padStart(6)} ms`,
    );
    console.log(
      `fetch + re-render of a one-file change  median ${m.toFixed(0).padStart(6)} ms  ${m <= TARGET_MS ? 'ok' : 'NOT MET'} (target ≤ ${TARGET_MS} ms)`,
    );
  } finally {
    await git.stop();
    await rm(cacheDir, { recursive: true, force: true });
  }
}

await main();
