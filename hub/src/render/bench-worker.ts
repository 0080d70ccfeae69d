// Benchmark of the render worker itself (a program, not a test): what rendering in a
// child process costs over rendering in the calling thread (the bare figure, measured in
// the same run). Medians of 5 runs of:
// - start: a fresh worker's first render of a one-cluster fleet (the process starts,
//   loads the renderer, renders, answers) against the same render in-process;
// - large: a cold render whose tree (16 MB) and new bundle contents (64 MB of JSON: four
//   clusters of 16 MB, the default render.maxClusterBytes) cross between the processes,
//   with the longest hold of the calling thread's event loop;
// - memory: RSS of the calling process and of the worker process, idle after a render.
// Run: node hub/dist/render/bench-worker.js
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { FleetRenderer } from './renderer.js';
import { bundleYaml, clusterYaml, configMap, repo } from './testing.js';
import { WorkerRenderer } from './worker-renderer.js';

const RUNS = 5;
const MiB = 1024 * 1024;
const LARGE_CLUSTERS = 4;
const LARGE_OBJECTS = 4_000;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

const small = repo({
  'clusters/c1.yaml': clusterYaml('c1'),
  'bundles/app/bundle.yaml': bundleYaml(
    'app',
    '  namespace: app\n  targets:\n    - clusterSelector: {}\n',
  ),
  'bundles/app/manifests/cm.yaml': configMap('app', { k: 'v' }),
});

// Every cluster gets its own rendering (the value names the cluster): 4 × 16 MB of objects.
function largeFleet(): ReturnType<typeof repo> {
  const value = 'x'.repeat(4000);
  const files: Record<string, string> = {
    'bundles/big/bundle.yaml': bundleYaml(
      'big',
      '  namespace: big\n  substitute: true\n  targets:\n    - clusterSelector: {}\n',
    ),
    // A plain scalar: the YAML parser builds a double-quoted one character by character,
    // and 4,000 such strings of 4 KB held ~500 MiB of heap before V8 flattened them.
    'bundles/big/manifests/cm.yaml': Array.from(
      { length: LARGE_OBJECTS },
      (_, i) =>
        `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata:\n  c: \${cluster.name}\n  v: ${value}\n`,
    ).join('---\n'),
  };
  for (let c = 0; c < LARGE_CLUSTERS; c++) files[`clusters/c${c}.yaml`] = clusterYaml(`c${c}`);
  return repo(files);
}

const LARGE_OPTIONS = { maxClusterBytes: 17 * MiB };

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

// Longest hold of this thread's event loop while fn runs, ms.
async function held(fn: () => Promise<unknown>): Promise<number> {
  const h = monitorEventLoopDelay({ resolution: 5 });
  h.enable();
  await fn();
  h.disable();
  return h.max / 1e6;
}

function rssMiB(pid: number | 'self'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

function childPids(): number[] {
  try {
    const text = readFileSync(`/proc/self/task/${process.pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(/\s+/).map(Number);
  } catch {
    return [];
  }
}

async function main(): Promise<void> {
  const start: number[] = [];
  const startBare: number[] = [];
  const large: number[] = [];
  const largeBare: number[] = [];
  const largeHeld: number[] = [];
  const rss: { self: number; worker: number }[] = [];
  const tree = largeFleet();
  for (let i = 0; i < RUNS; i++) {
    startBare.push(await timed(() => new FleetRenderer().render(small, 'r')));
    const w = new WorkerRenderer();
    start.push(await timed(() => w.render(small, 'r')));
    await new Promise((r) => setTimeout(r, 500));
    const kids = childPids();
    rss.push({
      self: rssMiB('self'),
      worker: kids.reduce((n, pid) => n + rssMiB(pid), 0),
    });
    await w.stop();

    largeBare.push(await timed(() => new FleetRenderer(LARGE_OPTIONS).render(tree, 'r')));
    const lw = new WorkerRenderer(LARGE_OPTIONS);
    await lw.render(small, 'warm');
    let ms = 0;
    largeHeld.push(
      await held(async () => {
        ms = await timed(async () => {
          const out = await lw.render(tree, 'r');
          if (out.errors.length > 0) throw new Error(out.errors[0]?.message);
        });
      }),
    );
    large.push(ms);
    await lw.stop();
  }
  const line = (what: string, value: number, unit: string, bare?: number): void => {
    const ratio =
      bare === undefined ? '' : `  bare ${bare.toFixed(1)} ${unit}, ×${(value / bare).toFixed(2)}`;
    console.log(`${what.padEnd(58)} ${value.toFixed(1).padStart(8)} ${unit}${ratio}`);
  };
  console.log(
    `render worker, medians of ${RUNS} runs; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
  );
  line(
    'first render of a new worker (1 cluster, 1 object)',
    median(start),
    'ms',
    median(startBare),
  );
  line(
    `cold render, 16 MB tree, ${LARGE_CLUSTERS} × 16 MB of objects out`,
    median(large),
    'ms',
    median(largeBare),
  );
  line('  event loop of the calling thread held (max)', median(largeHeld), 'ms');
  line('RSS of the calling process, worker idle', median(rss.map((r) => r.self)), 'MiB');
  line('RSS of the worker process (0 for a thread)', median(rss.map((r) => r.worker)), 'MiB');
}

await main();
