// What the render sandbox costs per kustomize run: the same small `kustomize build` (10
// ConfigMaps) run RUNS times with no sandbox (the baseline), in a user+network namespace,
// and as another user in one, sequentially. Prints the median wall time per run of each
// level and its ratio to the baseline, with the load average.
// `FLOTILLA_KUSTOMIZE=… node hub/dist/render/bench-sandbox.js` (kustomize must be
// runnable by uid 65534 for the "user" level, e.g. in /usr/local/bin or /tmp).
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NO_SANDBOX, resolveSandbox } from './sandbox.js';
import type { ToolSandbox } from './sandbox.js';
import { ExecToolRunner } from './tools.js';

const RUNS = 40;
const kustomize = process.env.FLOTILLA_KUSTOMIZE || 'kustomize';

const files = new Map<string, Buffer>([
  [
    'k/kustomization.yaml',
    Buffer.from(
      `resources:\n${Array.from({ length: 10 }, (_, i) => `  - cm-${i}.yaml\n`).join('')}`,
    ),
  ],
  ...Array.from(
    { length: 10 },
    (_, i) =>
      [
        `k/cm-${i}.yaml`,
        Buffer.from(
          `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\ndata: { a: "${i}" }\n`,
        ),
      ] as [string, Buffer],
  ),
]);

async function median(sandbox: ToolSandbox): Promise<number> {
  const runner = new ExecToolRunner({ kustomizePath: kustomize, sandbox });
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    await runner.run({
      tool: 'kustomize',
      files,
      args: (root) => ['build', join(root, 'k')],
      errorFile: 'k/kustomization.yaml',
    });
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] as number;
}

const levels: [string, ToolSandbox][] = [['none (baseline)', NO_SANDBOX]];
for (const mode of ['network', 'user'] as const) {
  try {
    levels.push([mode, resolveSandbox({ mode, uid: 65534, gid: 65534 }, [kustomize])]);
  } catch (err) {
    console.log(`${mode}: not available here (${(err as Error).message})`);
  }
}
const base = await median(NO_SANDBOX);
for (const [name, sandbox] of levels) {
  const ms = sandbox === NO_SANDBOX ? base : await median(sandbox);
  console.log(
    `${name.padEnd(16)} median ${ms.toFixed(1)} ms per kustomize run  ratio ${(ms / base).toFixed(2)}`,
  );
}
console.log(
  `loadavg ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
