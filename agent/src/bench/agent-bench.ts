// Agent benchmarks against real kube-apiservers started by this program (a program, not
// a test: it prints figures and compares them with the targets of issue 4).
//   node agent/dist/bench/agent-bench.js [--rounds 3] [--apps 250] [--drifts 200]
// Per round: apply 1,000 objects to an empty cluster; re-apply them unchanged (writes
// counted); 200 drifts injected one at a time by another field manager, timed from
// just before the external write to our corrective apply completing; then the real
// agent process applies the same state to a fresh cluster and its VmRSS is read from
// /proc while it manages the objects: launched as `flotilla-agent` (node dist/main.js,
// what the bin and the image run) and as `flotilla agent` (the hub's CLI), both with
// plain `node` and no flags: the process sets its own V8 flags (node-flags.ts). The
// in-process figures run with the same flags (set below), so they show what the flags cost.
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { objectKey, silentLogger } from '@flotilla/common';
import type { DesiredState } from '@flotilla/common';
import { applyAgentV8Flags } from '../node-flags.js';
import { DriftController } from '../drift/controller.js';
import { InventoryStore } from '../inventory/inventory.js';
import { KubeClient, loadKubeConfig } from '../kube/client.js';
import { reconcile } from '../sync/reconcile.js';
import { startCluster, startNats } from '@flotilla/test-env';
import { ScriptedHub, sendState, until } from '../testing/scripted-hub.js';
import { CountingKube, benchState, median, percentile } from './fixtures.js';

const AGENT_NS = 'flotilla-system';
const NAMESPACES = 5;
/** How the agent process is started: `flotilla-agent` (its bin), or `flotilla agent` through the hub's CLI when that is built. */
function launches(): { flotillaAgent: string[]; flotillaCliAgent: string[] | undefined } {
  const main = join(dirname(fileURLToPath(import.meta.url)), '..', 'main.js');
  let cli: string | undefined;
  try {
    // Resolved, never imported: the agent does not depend on the hub.
    cli = join(dirname(fileURLToPath(import.meta.resolve('@flotilla/hub'))), 'cli', 'main.js');
  } catch {
    cli = undefined;
  }
  return { flotillaAgent: [main], flotillaCliAgent: cli ? [cli, 'agent'] : undefined };
}

interface Figures {
  applyMs: number;
  reapplyMs: number;
  reapplyWrites: number;
  rvChanged: number;
  p50: number;
  p99: number;
  rssMiB: number;
  rssCliMiB: number;
  agentApplyMs: number;
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

async function createNamespaces(kube: KubeClient): Promise<void> {
  for (let n = 0; n < NAMESPACES; n++)
    await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `bench-${n}` } });
}

async function resourceVersions(kube: KubeClient): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const [v, k] of [
    ['apps/v1', 'Deployment'],
    ['v1', 'Service'],
    ['v1', 'ConfigMap'],
    ['v1', 'ServiceAccount'],
  ] as const) {
    for (const o of await kube.list(v, k, { labelSelector: 'flotilla.dev/bundle' }))
      out.set(objectKey(o), String(o.metadata.resourceVersion));
  }
  return out;
}

async function driftLatencies(
  kube: KubeClient,
  state: DesiredState,
  bundles: Parameters<DriftController['afterApply']>[1],
  drifts: number,
): Promise<number[]> {
  const waiting = new Map<string, (at: number) => void>();
  const reporter = { publish: () => ({ id: 'bench' }) };
  const controller = new DriftController(kube, reporter, {
    logger: silentLogger(),
    onHealed: (key) => waiting.get(key)?.(performance.now()),
  });
  controller.beforeApply();
  await controller.afterApply(state, bundles);
  await until(() => controller.detector.backlog === 0, 'initial checks', 120_000);
  const latencies: number[] = [];
  for (let i = 0; i < drifts; i++) {
    const ns = `bench-${i % NAMESPACES}`;
    const key = `/ConfigMap/${ns}/app-${i}`;
    const healed = new Promise<number>((resolve) => waiting.set(key, resolve));
    const t0 = performance.now();
    await kube.request({
      method: 'PATCH',
      path: `/api/v1/namespaces/${ns}/configmaps/app-${i}`,
      query: { fieldManager: 'kubectl-edit' },
      contentType: 'application/merge-patch+json',
      body: { data: { LOG_LEVEL: `debug-${i}` } },
    });
    const timeout = new Promise<number>((_r, reject) =>
      setTimeout(() => reject(new Error(`drift ${key} not healed within 10 s`)), 10_000).unref(),
    );
    latencies.push((await Promise.race([healed, timeout])) - t0);
    waiting.delete(key);
  }
  await controller.stop();
  return latencies;
}

async function vmRssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** The real agent process (started with plain `node` and `launch`) applies the state to a fresh cluster; returns its apply time and peak VmRSS while managing it. */
async function agentRss(
  state: DesiredState,
  launch: string[],
): Promise<{ rssMiB: number; applyMs: number }> {
  const [api, nats] = await Promise.all([startCluster(), startNats()]);
  const hub = new ScriptedHub();
  await hub.start();
  const kube = await KubeClient.create(loadKubeConfig(api.kubeconfigPath));
  await createNamespaces(kube);
  hub.onStream = (call) => {
    call.write({ welcome: { session: 'bench', heartbeatIntervalMs: 5_000, protocolVersion: 1 } });
    sendState(call, state, 1);
  };
  const token = join(tmpdir(), `flotilla-bench-token-${process.pid}`);
  await writeFile(token, 'bench\n');
  const args = [
    ...launch,
    '--cluster',
    'bench',
    '--hub',
    `127.0.0.1:${hub.port}`,
    '--insecure',
    '--kubeconfig',
    api.kubeconfigPath,
    '--nats',
    nats.url,
    '--token-file',
    token,
    '--log-level',
    'warn',
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const started = performance.now();
  try {
    await until(() => hub.streams[0]?.received.find((m) => m.ack), 'agent ack', 120_000);
    const applyMs = performance.now() - started;
    // Let the watches list and the drift checks of the fresh objects settle, then sample.
    let peak = 0;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 500));
      peak = Math.max(peak, await vmRssMiB(child.pid as number));
    }
    return { rssMiB: peak, applyMs };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    hub.server.forceShutdown();
    kube.close();
    await Promise.all([api.stop(), nats.stop({ removeStore: true })]);
  }
}

async function round(apps: number, drifts: number): Promise<Figures> {
  const api = await startCluster();
  const kube = await KubeClient.create(loadKubeConfig(api.kubeconfigPath));
  try {
    await createNamespaces(kube);
    const counting = new CountingKube(kube, AGENT_NS);
    const store = new InventoryStore(counting, AGENT_NS);
    const state = benchState(apps, 5, NAMESPACES);
    let t = performance.now();
    const first = await reconcile(counting, store, state);
    const applyMs = performance.now() - t;
    if (first.result !== 'applied')
      throw new Error(`apply failed: ${JSON.stringify(first.bundles.flatMap((b) => b.failures))}`);
    const before = await resourceVersions(kube);
    counting.writes = 0;
    t = performance.now();
    const second = await reconcile(counting, store, state);
    const reapplyMs = performance.now() - t;
    const afterRv = await resourceVersions(kube);
    const rvChanged = [...before].filter(([k, v]) => afterRv.get(k) !== v).length;
    const lat = await driftLatencies(kube, state, second.bundles, drifts);
    const how = launches();
    const agent = await agentRss(state, how.flotillaAgent);
    const cli = how.flotillaCliAgent
      ? await agentRss(state, how.flotillaCliAgent)
      : { rssMiB: Number.NaN };
    return {
      applyMs,
      reapplyMs,
      reapplyWrites: counting.writes,
      rvChanged,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      rssMiB: agent.rssMiB,
      rssCliMiB: cli.rssMiB,
      agentApplyMs: agent.applyMs,
    };
  } finally {
    kube.close();
    await api.stop();
  }
}

function verdict(value: number, target: number): string {
  return value <= target ? 'met' : 'NOT MET';
}

applyAgentV8Flags();
const rounds = arg('rounds', 3);
const apps = arg('apps', 250);
const drifts = arg('drifts', 200);
const all: Figures[] = [];
for (let r = 1; r <= rounds; r++) {
  const f = await round(apps, drifts);
  all.push(f);
  console.log(
    `round ${r}: apply ${apps * 4} objects ${(f.applyMs / 1000).toFixed(2)} s; re-apply ${(f.reapplyMs / 1000).toFixed(2)} s, ${f.reapplyWrites} writes, ${f.rvChanged} resourceVersions changed; ` +
      `drift-to-heal p50 ${f.p50.toFixed(1)} ms p99 ${f.p99.toFixed(1)} ms; agent process: apply+ack ${(f.agentApplyMs / 1000).toFixed(2)} s, peak VmRSS ${f.rssMiB.toFixed(1)} MiB as flotilla-agent, ${f.rssCliMiB.toFixed(1)} MiB as flotilla agent (node ${process.version})`,
  );
}
const m = (k: keyof Figures): number => median(all.map((f) => f[k]));
console.log(`\nmedian of ${rounds} rounds (${apps * 4} objects, ${drifts} drifts):`);
console.log(
  `  apply to an empty cluster   ${(m('applyMs') / 1000).toFixed(2)} s   target <= 15 s    ${verdict(m('applyMs'), 15_000)}`,
);
console.log(
  `  re-apply unchanged          ${(m('reapplyMs') / 1000).toFixed(2)} s   target <= 3 s     ${verdict(m('reapplyMs'), 3_000)}`,
);
console.log(
  `  writes during re-apply      ${m('reapplyWrites')} (resourceVersions changed: ${m('rvChanged')})   target 0   ${verdict(m('reapplyWrites') + m('rvChanged'), 0)}`,
);
console.log(
  `  drift-to-heal p50           ${m('p50').toFixed(1)} ms  target <= 50 ms   ${verdict(m('p50'), 50)}`,
);
console.log(
  `  drift-to-heal p99           ${m('p99').toFixed(1)} ms  target <= 250 ms  ${verdict(m('p99'), 250)}`,
);
console.log(
  `  agent RSS managing them     ${m('rssMiB').toFixed(1)} MiB target <= 100 MiB ${verdict(m('rssMiB'), 100)} (flotilla-agent = node dist/main.js, node ${process.version})`,
);
console.log(
  `  agent RSS managing them     ${m('rssCliMiB').toFixed(1)} MiB target <= 100 MiB ${verdict(m('rssCliMiB'), 100)} (flotilla agent = node hub/dist/cli/main.js agent; NaN when the hub is not built)`,
);
process.exit(0);
