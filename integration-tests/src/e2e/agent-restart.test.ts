// Nothing lost across agent restarts (issue 14), as real processes: with NATS down, the
// agent applies a new commit and heals a drift; it is killed (SIGKILL) and started again;
// NATS comes back. Every event it made meanwhile arrives in the hub's history exactly
// once: the events waited in the agent's buffer file (an emptyDir in its Deployment), kept
// their ids across the restart, and JetStream and the history de-duplicate by id.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { EVENT_SPOOL_FILE, readSpool } from '@flotilla/agent';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const CLUSTER = 'solo';
const skip = await requireEnv(['cluster', 'nats', 'git']);
let fleet: Fleet | undefined;

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

before(async () => {
  if (skip) return;
  fleet = await startFleet({
    clusters: [CLUSTER],
    repoFiles: {
      [`clusters/${CLUSTER}.yaml`]: `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${CLUSTER}\n`,
      'bundles/app/bundle.yaml': BUNDLE,
      'bundles/app/manifests/namespace.yaml':
        'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: app\n',
      'bundles/app/manifests/config.yaml': config('first'),
    },
  });
});

after(async () => {
  await fleet?.stop();
});

function core(f: Fleet): CoreV1Api {
  const kc = new KubeConfig();
  kc.loadFromFile(f.clusters.get(CLUSTER)!.kubeconfigPath);
  return kc.makeApiClient(CoreV1Api);
}

const message = async (api: CoreV1Api): Promise<string | undefined> =>
  (await api.readNamespacedConfigMap({ name: 'app-config', namespace: 'app' })).data?.message;

type Entry = { id: string; kind: string; revision: string; cluster: string };

test(
  'events-made-while-nats-is-down-arrive-once-after-the-agent-is-killed-and-restarted',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    await f.waitForRevision(f.firstCommit, 90_000);
    const api = core(f);
    const spoolFile = join(f.eventBufferDir(CLUSTER), EVENT_SPOOL_FILE);

    await f.nats.stop();
    // A new commit, applied while NATS is down (the hub streams it over gRPC).
    const second = await f.repo.commitAndPush('Second', {
      'bundles/app/manifests/config.yaml': config('second'),
    });
    await waitFor(async () => (await message(api)) === 'second', {
      what: `the second commit applied in ${CLUSTER} (logs in ${f.logDir})`,
      timeoutMs: 60_000,
      intervalMs: 250,
    });
    // Someone edits the object: the agent detects the drift and heals it.
    const cm = await api.readNamespacedConfigMap({ name: 'app-config', namespace: 'app' });
    await api.replaceNamespacedConfigMap({
      name: 'app-config',
      namespace: 'app',
      body: { ...cm, data: { ...cm.data, message: 'edited' } },
    });
    // Every event waits in the agent's buffer file: the apply, the drift and its heal.
    const waiting = await waitFor(
      () => {
        const kinds = readSpool(spoolFile).pending.map((p) => p.subject.split('.').pop());
        return ['applied', 'drift-detected', 'drift-corrected'].every((k) => kinds.includes(k))
          ? readSpool(spoolFile).pending
          : undefined;
      },
      { what: `the agent's buffer holding the apply, the drift and its heal`, timeoutMs: 60_000 },
    );
    assert.equal(await message(api), 'second', 'the drift was healed');

    await f.restartAgent(CLUSTER, { kill: true });
    await f.nats.start();

    const ids = waiting.map((p) => p.event.id);
    const history = await waitFor(
      async () => {
        const out = await f.cli(['history', '--cluster', CLUSTER, '--since', '1h', '-o', 'json']);
        const entries = (JSON.parse(out) as { entries: Entry[] }).entries;
        return ids.every((id) => entries.some((e) => e.id === id)) ? entries : undefined;
      },
      { what: `every buffered event in the history (logs in ${f.logDir})`, timeoutMs: 120_000 },
    );
    for (const id of ids)
      assert.equal(history.filter((e) => e.id === id).length, 1, `event ${id} is there once`);
    const appliedSecond = history.filter((e) => e.kind === 'applied' && e.revision === second);
    assert.equal(appliedSecond.length, 1, 'one applied event for the second commit');
    const drift = history.filter((e) => e.kind === 'drift-detected');
    assert.equal(drift.length, 1, 'one drift-detected event, not a second one after the restart');
    // The buffer file no longer holds anything to send.
    await waitFor(() => readSpool(spoolFile).pending.length === 0, {
      what: "the agent's buffer emptied",
    });
    await f.waitForRevision(second, 60_000);
  },
);
