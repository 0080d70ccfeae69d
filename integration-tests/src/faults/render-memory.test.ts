// A commit that fills the render worker's heap, on a real installation (hub and agent
// processes, Kubernetes API servers, nats-server, a smart-HTTP Git server). Several
// bundles of 10,000 documents each, within the default document, object and byte limits,
// each holding more than the worker's heap can take (the hub runs with the smallest
// render.workerMaxHeapBytes, 64 MiB, so that a commit of test size fills it). The hub
// must stay up with the agents' streams connected, the good bundle must reach the
// clusters at that commit, every hostile bundle must be Failed with its file and the
// setting in `flotilla get deployments` and `flotilla status`, and the next commit must
// render as usual.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const CLUSTERS = ['eu', 'us'];
const HOSTILE = ['flood-1', 'flood-2', 'flood-3', 'flood-4'];
const MiB = 1024 * 1024;

const cluster = (name: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${name}\n`;
const bundle = (name: string): string =>
  `apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: ${name}\nspec:\n  source:\n    path: manifests\n  namespace: ${name}\n  targets:\n    - clusterSelector: {}\n`;
const configMap = (name: string, value: string): string =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  value: "${value}"\n`;

// 10,000 documents: 5,000 ConfigMaps (the default limit on objects per bundle) and as
// many empty documents (the default limit on documents is 10,000), 5 MB of YAML. Each
// value is a 1 KiB double-quoted string, which the YAML parser builds character by
// character (~36 KiB of heap a ConfigMap): reading one such bundle takes ~180 MiB.
function flood(): string {
  const value = 'x'.repeat(1024);
  return Array.from({ length: 5_000 }, (_, i) => `${configMap(`cm-${i}`, value)}---\n---\n`).join(
    '',
  );
}

const skip = await requireEnv(['cluster', 'nats', 'git']);
let fleet: Fleet | undefined;

before(async () => {
  if (skip) return;
  fleet = await startFleet({
    clusters: CLUSTERS,
    insecure: true,
    render: { workerMaxHeapBytes: String(64 * MiB) },
    repoFiles: {
      ...Object.fromEntries(CLUSTERS.map((c) => [`clusters/${c}.yaml`, cluster(c)])),
      'bundles/good/bundle.yaml': bundle('good'),
      'bundles/good/manifests/cm.yaml': configMap('settings', 'one'),
    },
  });
  await fleet.waitForRevision(fleet.firstCommit, 120_000);
});

after(async () => {
  await fleet?.stop();
});

/** How often an agent's log says it connected to the hub so far. */
async function connects(f: Fleet, name: string): Promise<number> {
  const log = await readFile(f.agents.get(name)!.logFile, 'utf8');
  return log.split('\n').filter((l) => l.includes('"msg":"connected to hub"')).length;
}

type Deployment = { bundle: string; cluster: string; state: string; reason: string };

async function deployments(f: Fleet): Promise<Deployment[]> {
  return (
    JSON.parse(await f.cli(['get', 'deployments', '-o', 'json'])) as { deployments: Deployment[] }
  ).deployments;
}

async function settingsValue(f: Fleet, name: string): Promise<string | undefined> {
  const kc = new KubeConfig();
  kc.loadFromFile(f.clusters.get(name)!.kubeconfigPath);
  const cm = await kc
    .makeApiClient(CoreV1Api)
    .readNamespacedConfigMap({ name: 'settings', namespace: 'good' });
  return cm.data?.value;
}

const HEAP_ERROR =
  /failed to render: bundles\/flood-\d\/manifests\/cm\.yaml:\d+: reading this bundle took the render worker's heap past half its limit \(\d+ of 64 MiB in use; render\.workerMaxHeapBytes\)/;

test(
  'bundles-filling-the-render-workers-heap-fail-alone-and-the-hub-keeps-serving',
  { skip, timeout: 420_000 },
  async () => {
    const f = fleet!;
    const before = await Promise.all(CLUSTERS.map((c) => connects(f, c)));
    const hostile = Object.fromEntries(
      HOSTILE.flatMap((b) => [
        [`bundles/${b}/bundle.yaml`, bundle(b)],
        [`bundles/${b}/manifests/cm.yaml`, flood()],
      ]),
    );
    const rev = await f.repo.commitAndPush('Hostile: bundles that fill the render heap', {
      ...hostile,
      'bundles/good/manifests/cm.yaml': configMap('settings', 'two'),
    });
    const short = rev.slice(0, 12);

    // Every hostile bundle is Failed on both clusters with its file and the setting.
    const rows = await waitFor(
      async () => {
        const d = await deployments(f);
        const failed = d.filter(
          (x) => HOSTILE.includes(x.bundle) && x.state === 'Failed' && x.reason.startsWith(short),
        );
        return failed.length === HOSTILE.length * CLUSTERS.length ? d : false;
      },
      { what: `the hostile bundles Failed at ${short} (logs in ${f.logDir})`, timeoutMs: 300_000 },
    );
    for (const r of rows.filter((x) => HOSTILE.includes(x.bundle)))
      assert.match(r.reason, HEAP_ERROR, `${r.bundle} on ${r.cluster}`);

    // The good bundle of the same commit reached both clusters.
    await waitFor(
      async () =>
        (await Promise.all(CLUSTERS.map((c) => settingsValue(f, c)))).every((v) => v === 'two'),
      { what: 'the good bundle at the hostile commit in both clusters', timeoutMs: 60_000 },
    );
    const status = await f.cli(['status']);
    for (const c of CLUSTERS) assert.match(status, new RegExp(`^${c}\\s+true\\s+Failed\\s`, 'm'));
    assert.match(status, /^ {2}bundle flood-1 on eu,us: \w+ failed to render: bundles\/flood-1\//m);

    // The hub never stopped, and no agent had to dial it again.
    assert.equal(f.hub.isRunning(), true, 'the hub is still running');
    assert.deepEqual(await Promise.all(CLUSTERS.map((c) => connects(f, c))), before);

    // The next commit renders as usual.
    await f.repo.remove(HOSTILE.map((b) => `bundles/${b}`));
    const fix = await f.repo.commitAndPush('Remove the hostile bundles');
    await f.waitForRevision(fix, 120_000);
    assert.equal(f.hub.isRunning(), true);
  },
);
