// The hub keeps serving when Git or NATS is down, across a restart: a real installation
// (hub and agent processes, a Kubernetes API server, nats-server, a smart-HTTP Git server).
// The hub is SIGKILLed and started again while Git refuses connections, then while NATS is
// stopped: it must be ready at once from the rendering it saved, tell the agent it is up to
// date without re-applying anything, answer `flotilla status` saying what is degraded, and
// clear that once the dependency is back.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { startFleet } from '../system/fleet.js';
import type { Fleet } from '../system/fleet.js';

const CLUSTER = 'steady';
const skip = await requireEnv(['cluster', 'nats', 'git']);

let fleet: Fleet | undefined;

before(async () => {
  if (skip) return;
  fleet = await startFleet({
    clusters: [CLUSTER],
    repoFiles: {
      [`clusters/${CLUSTER}.yaml`]: `apiVersion: flotilla.dev/v1alpha1\nkind: Cluster\nmetadata:\n  name: ${CLUSTER}\n`,
      'bundles/app/bundle.yaml':
        'apiVersion: flotilla.dev/v1alpha1\nkind: Bundle\nmetadata:\n  name: app\nspec:\n  source:\n    path: manifests\n  namespace: app\n  targets:\n    - clusterSelector: {}\n',
      'bundles/app/manifests/config.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app-config\ndata:\n  message: steady\n',
    },
  });
  await fleet.waitForRevision(fleet.firstCommit, 120_000);
});

after(async () => {
  await fleet?.stop();
});

/** How often the agent's log says `message` so far. */
async function agentSaid(f: Fleet, message: string): Promise<number> {
  const log = await readFile(f.agents.get(CLUSTER)!.logFile, 'utf8');
  return log.split('\n').filter((l) => l.includes(`"msg":"${message}"`)).length;
}

/** GET /readyz of the hub (HTTPS with the hub's CA). */
async function readyz(f: Fleet): Promise<{ status: number; body: { degraded: string[] } }> {
  const ca = await readFile(join(f.adminDir, 'ca.crt'));
  return new Promise((resolve, reject) => {
    httpsGet(`${f.hubHttpUrl}/readyz`, { ca }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { degraded: string[] } }),
      );
    }).on('error', reject);
  });
}

/** After a hub restart: the agent was told "up to date" again, applied nothing, and is Ready at the first commit. */
async function resyncedWithoutApply(f: Fleet, upToDate: number, applies: number): Promise<void> {
  await waitFor(
    async () => {
      const row = (await f.status()).find((r) => r.name === CLUSTER);
      return (
        row?.connected === true &&
        row.state === 'Ready' &&
        row.appliedRevision === f.firstCommit &&
        (await agentSaid(f, 'desired state up to date')) > upToDate
      );
    },
    { what: `${CLUSTER} reconnected and told it is up to date`, timeoutMs: 90_000 },
  );
  assert.equal(await agentSaid(f, 'apply finished'), applies, 'nothing was applied again');
}

test(
  'a-hub-restarted-while-git-is-down-serves-its-saved-rendering-and-says-git-is-degraded',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    const applies = await agentSaid(f, 'apply finished');
    const upToDate = await agentSaid(f, 'desired state up to date');
    await f.git.pause();
    try {
      // restartHub resolves once /readyz answers 200: ready without Git.
      await f.restartHub({ kill: true });
      await resyncedWithoutApply(f, upToDate, applies);
      const out = await waitFor(
        async () => {
          const text = await f.cli(['status']);
          return /HUB DEGRADED: Git source fleet/.test(text) ? text : undefined;
        },
        { what: 'flotilla status saying Git is degraded', timeoutMs: 60_000 },
      );
      assert.match(
        out,
        new RegExp(
          `HUB DEGRADED: Git source fleet (unreachable|failing) since \\S+: serving revision ${f.firstCommit.slice(0, 12)} saved before the restart`,
        ),
      );
      assert.match(out, new RegExp(`${CLUSTER}\\s`));
      const ready = await readyz(f);
      assert.equal(ready.status, 200);
      assert.ok(ready.body.degraded.includes('git:fleet'), ready.body.degraded.join(', '));
      // The history replay waits for the agents dialling back, and says so meanwhile
      // ("history"); once it is done only Git is left.
      await waitFor(
        async () => {
          const r = await readyz(f);
          return r.status === 200 && r.body.degraded.join() === 'git:fleet';
        },
        { what: 'only Git left degraded once the history is replayed', timeoutMs: 60_000 },
      );
    } finally {
      await f.git.resume();
    }
    await waitFor(async () => (await readyz(f)).body.degraded.length === 0, {
      what: 'Git no longer degraded once it answers',
      timeoutMs: 60_000,
    });
    assert.doesNotMatch(await f.cli(['status']), /HUB DEGRADED/);
    assert.equal(
      await agentSaid(f, 'apply finished'),
      applies,
      'the render at the same commit re-applied nothing',
    );
  },
);

test(
  'a-hub-started-while-nats-is-down-serves-agents-and-reads-and-says-nats-is-degraded',
  { skip, timeout: 300_000 },
  async () => {
    const f = fleet!;
    const applies = await agentSaid(f, 'apply finished');
    const upToDate = await agentSaid(f, 'desired state up to date');
    await f.nats.stop();
    try {
      await f.restartHub({ kill: true });
      await waitFor(
        async () => {
          const r = await f.cli(['status']).catch(() => '');
          return /HUB DEGRADED: NATS unreachable since/.test(r) && r.includes(CLUSTER);
        },
        { what: 'flotilla status answering and saying NATS is degraded', timeoutMs: 60_000 },
      );
      const ready = await readyz(f);
      assert.equal(ready.status, 200);
      assert.ok(ready.body.degraded.includes('nats'), ready.body.degraded.join(', '));
      // The agent's stream is the hub's: it reconnects and is told it is up to date.
      await waitFor(async () => (await agentSaid(f, 'desired state up to date')) > upToDate, {
        what: `${CLUSTER} told it is up to date by the new hub`,
        timeoutMs: 90_000,
      });
      assert.equal(await agentSaid(f, 'apply finished'), applies, 'nothing was applied again');
    } finally {
      await f.nats.start();
    }
    await waitFor(async () => (await readyz(f)).body.degraded.length === 0, {
      what: 'NATS no longer degraded once it is back',
      timeoutMs: 60_000,
    });
    await resyncedWithoutApply(f, upToDate, applies);
  },
);
