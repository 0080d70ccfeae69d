// Startup benchmark (a program, not a test): time to a ready API server for 1 and 3
// concurrent clusters, median of N runs.
//   node integration-tests/env/dist/bench-startup.js [runs=3]
import { startCluster } from './cluster.js';

async function timeStart(count: number): Promise<number> {
  const started = Date.now();
  const clusters = await Promise.all(
    Array.from({ length: count }, (_, i) => startCluster({ name: `bench-${count}-${i}` })),
  );
  const elapsed = Date.now() - started;
  await Promise.all(clusters.map((c) => c.stop()));
  return elapsed;
}

const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const runs = Number(process.argv[2] ?? 3);
for (const count of [1, 3]) {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await timeStart(count));
  console.log(`${count} cluster(s): median ${median(times)} ms (runs: ${times.join(', ')} ms)`);
}
