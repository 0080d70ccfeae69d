// Network faults with a real TCP fault proxy (Toxiproxy) on every link of an installation:
// agent → hub (gRPC, mTLS), agent → NATS and hub → NATS (TLS). For each fault (latency,
// a bandwidth cap, connection resets, half-open connections that drop data but stay open,
// a partition) the test holds it on all three links while a commit is pushed and someone
// edits an applied object, then clears it and measures how long the cluster takes to run
// the commit with every event of the agent in the hub's history exactly once. The figures
// are printed as a table (docs/security.md quotes it); the test fails on a lost, doubled
// or never-converging run, never on time.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { EVENT_SPOOL_FILE, readSpool } from '@flotilla/agent';
import { requireEnv, startToxiproxy, waitFor } from '@flotilla/test-env';
import type { TestProxy, TestToxiproxy } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { Fleet, FleetLink } from '../system/fleet.js';

const CLUSTER = 'faulty';
const HOLD_MS = 6_000;
const skip = await requireEnv(['cluster', 'nats', 'git', 'toxiproxy']);

const BUNDLE = `apiVersion: flotilla.dev/v1alpha1
kind: Bundle
metadata:
  name: app
spec:
  source:
    path: manifests
  namespace: app
  targets:
    - clusterSelector: {}
  drift:
    mode: enforce
`;
const config = (message: string): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  message: ${message}\n`;

let toxiproxy: TestToxiproxy | undefined;
let fleet: Fleet | undefined;
const proxies = new Map<FleetLink, TestProxy>();

before(async () => {
  if (skip) return;
  toxiproxy = await startToxiproxy();
  const proxy = toxiproxy;
  fleet = await startFleet({
    clusters: [CLUSTER],
    repoFiles: {
      [`clusters/${CLUSTER}.yaml`]: `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${CLUSTER}\n`,
      'bundles/app/bundle.yaml': BUNDLE,
      'bundles/app/manifests/namespace.yaml':
        'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n',
      'bundles/app/manifests/config.yaml': config('start'),
    },
    route: async (link, upstream) => {
      const p = await proxy.proxy(link, upstream);
      proxies.set(link, p);
      return p.listen;
    },
  });
});

after(async () => {
  await fleet?.stop();
  await toxiproxy?.stop();
});

interface Fault {
  slug: string;
  name: string;
  /** The links it is put on (default all three). */
  links?: FleetLink[];
  apply(p: TestProxy): Promise<void>;
}

const FAULTS: Fault[] = [
  {
    slug: 'latency',
    name: 'latency 1 s (±0.2 s) each way',
    apply: (p) => p.add({ type: 'latency', attributes: { latency: 1_000, jitter: 200 } }),
  },
  {
    slug: 'a-bandwidth-cap',
    name: 'bandwidth 4 KB/s each way',
    apply: (p) => p.add({ type: 'bandwidth', attributes: { rate: 4 } }),
  },
  {
    slug: 'connection-resets',
    name: 'connections reset (TCP RST)',
    apply: (p) => p.add({ type: 'reset_peer', attributes: { timeout: 0 } }),
  },
  {
    slug: 'half-open-connections',
    name: 'half-open: data dropped, connections kept open',
    apply: (p) => p.add({ type: 'timeout', attributes: { timeout: 0 } }),
  },
  { slug: 'a-partition', name: 'partition (link down)', apply: (p) => p.setEnabled(false) },
  {
    slug: 'half-open-hub-to-nats-alone',
    name: 'half-open hub → NATS only (agents publish on)',
    links: ['hub-nats'],
    apply: (p) => p.add({ type: 'timeout', attributes: { timeout: 0 } }),
  },
  {
    slug: 'a-partition-of-agent-and-hub-alone',
    name: 'partition agent → hub only (events flow on)',
    links: ['agent-hub'],
    apply: (p) => p.setEnabled(false),
  },
];

type Entry = { id: string; kind: string; revision: string; cluster: string; time: string };

function core(f: Fleet): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(f.clusters.get(CLUSTER)!.kubeconfigPath);
  return kc.makeApiClient(CoreV1Api);
}

const rows: string[] = [];

for (const [i, fault] of FAULTS.entries()) {
  test(
    `after-${fault.slug}-on-every-link-the-cluster-converges-with-every-event-once`,
    { skip, timeout: 240_000 },
    async (t) => {
      const f = fleet!;
      if (i === 0) await f.waitForRevision(f.firstCommit, 90_000);
      const api = core(f);
      const spoolFile = join(f.eventBufferDir(CLUSTER), EVENT_SPOOL_FILE);
      const since = new Date().toISOString();
      const faulty = [...proxies.entries()]
        .filter(([link]) => !fault.links || fault.links.includes(link))
        .map(([, p]) => p);
      for (const p of faulty) await fault.apply(p);
      const revision = await f.repo.commitAndPush(`Under ${fault.name}`, {
        'bundles/app/manifests/config.yaml': config(`fault-${i}`),
      });
      // Someone edits the applied object while the links are bad: drift, then its heal.
      const cm = await api.readNamespacedConfigMap({ name: 'app-config', namespace: 'app' });
      await api.replaceNamespacedConfigMap({
        name: 'app-config',
        namespace: 'app',
        body: { ...cm, data: { ...cm.data, message: `edited-${i}` } },
      });
      await new Promise((r) => setTimeout(r, HOLD_MS));
      for (const p of faulty) await p.clear();
      const cleared = Date.now();

      await f.waitForRevision(revision, 120_000);
      const history = await waitFor(
        async () => {
          const out = await f.cli([
            'history',
            '--cluster',
            CLUSTER,
            '--since',
            since,
            '-o',
            'json',
          ]);
          const entries = (JSON.parse(out) as { entries: Entry[] }).entries;
          const kinds = new Set(entries.map((e) => e.kind));
          return entries.some((e) => e.kind === 'applied' && e.revision === revision) &&
            kinds.has('drift-detected') &&
            kinds.has('drift-corrected')
            ? entries
            : undefined;
        },
        {
          what: `the apply of ${revision.slice(0, 8)}, the drift and its heal in the history (logs in ${f.logDir})`,
          timeoutMs: 120_000,
          intervalMs: 250,
        },
      );
      const convergedS = (Date.now() - cleared) / 1000;
      const agentEvents = history.filter((e) => !e.kind.startsWith('session-'));
      const ids = agentEvents.map((e) => e.id);
      assert.equal(new Set(ids).size, ids.length, 'no event is in the history twice');
      assert.equal(
        agentEvents.filter((e) => e.kind === 'drift-detected').length,
        1,
        'one drift detected for the one edit',
      );
      assert.equal(
        (await api.readNamespacedConfigMap({ name: 'app-config', namespace: 'app' })).data?.message,
        `fault-${i}`,
      );
      // Nothing is left waiting in the agent's buffer: every event it made reached NATS.
      await waitFor(() => readSpool(spoolFile).pending.length === 0, {
        what: "the agent's event buffer empty",
        timeoutMs: 30_000,
      });
      const row = `| ${fault.name} | ${convergedS.toFixed(1)} s | ${agentEvents.length} | 0 | 0 |`;
      rows.push(row);
      t.diagnostic(row);
      if (i === FAULTS.length - 1)
        console.log(
          `\n| fault (${HOLD_MS / 1000} s; all three links unless said) | converged after it cleared | agent events in history | lost | doubled |\n| --- | --- | --- | --- | --- |\n${rows.join('\n')}\n`,
        );
    },
  );
}
