// What the render sandbox costs per kustomize run: the same small `kustomize build` (10
// ConfigMaps) run RUNS times with no sandbox (the baseline), in a user+network namespace,
// as another user in one, and sent to a renderer (render.remote: a render server on
// loopback, mutual TLS, in this process) sequentially. Prints the median wall time per run
// of each level and its ratio to the baseline, with the load average.
// `FLOTILLA_KUSTOMIZE=… node hub/dist/render/bench-sandbox.js` (kustomize must be
// runnable by uid 65534 for the "user" level, e.g. in /usr/local/bin or /tmp).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { NO_SANDBOX, resolveSandbox } from './sandbox.js';
import type { ToolSandbox } from './sandbox.js';
import { ExecToolRunner } from './tools.js';
import type { ToolRunner } from './tools.js';
import { CertificateAuthority, createCa } from '../identity/pki.js';
import { RemoteToolRunner } from './remote/client.js';
import { startRenderServer } from './remote/server.js';

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
  return medianOf(new ExecToolRunner({ kustomizePath: kustomize, sandbox }));
}

async function medianOf(runner: ToolRunner): Promise<number> {
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
// The renderer: the same run sent over mutual TLS to a render server (no sandbox there).
const dir = await mkdtemp(join(tmpdir(), 'flotilla-bench-remote-'));
const ca = new CertificateAuthority(createCa('bench-renderer-ca'));
const srvPair = ca.issueKeyPair('flotilla-renderer', 'flotilla-renderer', 86_400_000, {
  server: true,
  hosts: ['127.0.0.1'],
});
const hubPair = ca.issueKeyPair('flotilla-hub', 'flotilla-hub', 86_400_000);
await writeFile(join(dir, 'ca.crt'), ca.caPem);
await writeFile(join(dir, 'hub.crt'), hubPair.certPem);
await writeFile(join(dir, 'hub.key'), hubPair.keyPem);
const server = await startRenderServer({
  host: '127.0.0.1',
  port: 0,
  certPem: srvPair.certPem,
  keyPem: srvPair.keyPem,
  clientCaPem: ca.caPem,
  kustomizePath: kustomize,
  sandbox: NO_SANDBOX,
});
const remote = new RemoteToolRunner(
  {
    address: server.address,
    caFile: join(dir, 'ca.crt'),
    certFile: join(dir, 'hub.crt'),
    keyFile: join(dir, 'hub.key'),
  },
  {
    timeoutMs: 60_000,
    maxCpuMs: 30_000,
    maxMemoryBytes: 512 * 1024 * 1024,
    maxOutputBytes: 64 * 1024 * 1024,
  },
  new ExecToolRunner(),
);
const remoteMs = await medianOf(remote);
console.log(
  `${'remote'.padEnd(16)} median ${remoteMs.toFixed(1)} ms per kustomize run  ratio ${(remoteMs / base).toFixed(2)}`,
);
remote.close();
await server.stop();
await rm(dir, { recursive: true, force: true });
console.log(
  `loadavg ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
