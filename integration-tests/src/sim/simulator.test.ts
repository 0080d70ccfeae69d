// The fleet simulator against a real hub, so it cannot rot: simulated agents register
// with bootstrap tokens, receive a pushed commit over the real stream, publish through
// the agent's real publisher to a real NATS, and `flotilla status` shows what they did.
// Real parts: nats-server (decentralized auth in tls mode), a smart-HTTP Git server, and
// `flotilla hub` as its own process; the simulated agents run in child processes.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { requireEnv, waitFor } from '@flotilla/test-env';
import { simClusterName } from './config.js';
import { simFleetBump, simFleetFiles } from './fleet-repo.js';
import { startSimHub } from './sim-hub.js';
import type { SimHub } from './sim-hub.js';
import { Simulator } from './simulator.js';

const skip = await requireEnv(['nats', 'git']);
const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  while (cleanups.length > 0)
    await cleanups
      .pop()?.()
      .catch(() => undefined);
});

async function statusAt(hub: SimHub, revision: string, n: number, state: string) {
  return waitFor(
    async () => {
      const rows = await hub.status();
      const at = rows.filter((r) => r.appliedRevision === revision && r.state === state);
      return at.length === n ? rows : false;
    },
    {
      what: `flotilla status: ${n} clusters ${state} at ${revision.slice(0, 12)}`,
      timeoutMs: 60_000,
      intervalMs: 250,
    },
  );
}

describe('fleet simulator', { skip, timeout: 300_000 }, () => {
  test('twenty-registered-simulated-agents-receive-a-pushed-commit-and-status-shows-all-at-it', async () => {
    const N = 20;
    const hub = await startSimHub({ repoFiles: simFleetFiles({ clusters: N }), mode: 'tls' });
    cleanups.push(() => hub.stop());
    const stateDir = await mkdtemp(join(tmpdir(), 'flotilla-sim-ids-'));
    cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
    const sim = await Simulator.start({
      hub: hub.grpcAddress,
      nats: hub.nats.url,
      agents: N,
      processes: 2,
      auth: { kind: 'bootstrap', adminDir: hub.adminDir, stateDir },
      logDir: join(hub.logDir, 'sim'),
    });
    cleanups.push(() => sim.stop());
    await sim.allAt(hub.firstCommit, 120_000);
    // Registered for real: the hub lists an identity per simulated cluster.
    const identities = await hub.cli(['cluster', 'list']);
    for (let i = 0; i < N; i++) assert.match(identities, new RegExp(simClusterName(i)));

    const { revision, sentAt } = await hub.push(simFleetBump({ clusters: N, version: 2 }), 'v2');
    await sim.allAt(revision);
    const received = sim.receivedAt(revision, sentAt);
    assert.equal(received.size, N, 'every agent received the new desired state');
    const rows = await statusAt(hub, revision, N, 'Ready');
    assert.ok(rows.every((r) => r.connected && r.agentVersion === 'flotilla-sim'));

    // The events went through NATS: each cluster's history holds its applied event.
    const history = JSON.parse(
      await hub.cli(['history', '--cluster', simClusterName(7), '--kind', 'applied', '-o', 'json']),
    ) as { entries?: { revision?: string }[] } | { revision?: string }[];
    const entries = Array.isArray(history) ? history : (history.entries ?? []);
    assert.ok(JSON.stringify(entries).includes(revision), 'history shows the applied event');
    assert.equal(
      sim.agents().reduce((n, a) => n + a.redundant, 0),
      0,
      'no agent was sent a state it had',
    );
  });

  // The agents' clocks are minutes off the hub's, both ways: their events (failure, then the
  // retry's success) carry their clock, their acks are stamped by the hub. Every cluster must
  // end Ready, at both commits.
  test('agents-whose-clocks-are-minutes-off-either-way-end-ready-after-a-failed-apply-and-its-retry', async () => {
    const N = 8;
    const hub = await startSimHub({ repoFiles: simFleetFiles({ clusters: N }), mode: 'insecure' });
    cleanups.push(() => hub.stop());
    const sim = await Simulator.start({
      hub: hub.grpcAddress,
      nats: hub.nats.url,
      agents: N,
      auth: { kind: 'token', token: hub.agentToken },
      applyLatency: '5ms..20ms',
      failureRate: 1,
      retryAfterMs: 1_500,
      clockSkewMs: 10 * 60_000,
      seed: 7,
      logDir: join(hub.logDir, 'sim-skew'),
    });
    cleanups.push(() => sim.stop());
    await sim.waitUntil(() => sim.agents().every((a) => a.connected), 'every agent connected');
    const skews = sim.agents().map((a) => a.clockSkewMs);
    assert.ok(
      skews.some((s) => s > 60_000) && skews.some((s) => s < -60_000),
      `clocks more than a minute ahead and behind: ${skews.map((s) => Math.round(s / 1000)).join(', ')} s`,
    );
    const retried = (revision: string) =>
      sim.records().filter((r) => r.k === 'applied' && r.retry && r.revision === revision).length;
    const allReady = (revision: string) =>
      waitFor(
        async () => {
          const rows = await hub.status();
          const ready = rows.filter((r) => r.state === 'Ready' && r.appliedRevision === revision);
          return ready.length === N ? rows : false;
        },
        {
          what: `all ${N} clusters Ready at ${revision.slice(0, 8)}`,
          timeoutMs: 30_000,
          intervalMs: 250,
        },
      );
    await sim.waitUntil(() => retried(hub.firstCommit) === N, 'every first apply retried');
    await allReady(hub.firstCommit);
    const { revision } = await hub.push(simFleetBump({ clusters: N, version: 2 }), 'v2');
    await sim.waitUntil(() => retried(revision) === N, 'every apply of v2 retried');
    await allReady(revision);
  });

  test('simulated-failures-show-as-failed-and-a-restarted-hub-resends-nothing-to-current-agents', async () => {
    const N = 12;
    const hub = await startSimHub({ repoFiles: simFleetFiles({ clusters: N }), mode: 'insecure' });
    cleanups.push(() => hub.stop());
    // Half of the applies fail (which ones is the seed's choice); event clocks are skewed.
    const sim = await Simulator.start({
      hub: hub.grpcAddress,
      nats: hub.nats.url,
      agents: N,
      auth: { kind: 'token', token: hub.agentToken },
      applyLatency: '5ms..50ms',
      failureRate: 0.5,
      clockSkewMs: 30_000,
      logDir: join(hub.logDir, 'sim'),
    });
    cleanups.push(() => sim.stop());
    const appliesOf = (revision: string) =>
      sim.records().filter((r) => r.k === 'applied' && r.revision === revision);
    await sim.waitUntil(() => appliesOf(hub.firstCommit).length === N, 'first applies');

    const { revision } = await hub.push(simFleetBump({ clusters: N, version: 2 }), 'v2');
    await sim.waitUntil(() => appliesOf(revision).length === N, `${N} applies of v2`);
    const failed = new Set(
      appliesOf(revision)
        .filter((r) => r.k === 'applied' && r.result === 'failed')
        .map((r) => r.agent),
    );
    assert.ok(failed.size > 0 && failed.size < N, `some but not all failed (${failed.size})`);
    const rows = await waitFor(
      async () => {
        const all = await hub.status();
        const ready = all.filter((r) => r.state === 'Ready' && r.appliedRevision === revision);
        const shown = all.filter((r) => r.state === 'Failed');
        return shown.length === failed.size && ready.length === N - failed.size ? all : false;
      },
      {
        what: `${failed.size} clusters Failed, the others Ready`,
        timeoutMs: 30_000,
        intervalMs: 250,
      },
    );
    for (const r of rows) {
      assert.equal(r.state, failed.has(r.name) ? 'Failed' : 'Ready', r.name);
      if (failed.has(r.name)) assert.match(String(r.message), /simulated apply failure/);
    }

    // A restarted hub welcomes every agent back and sends a desired state only to those
    // whose applied digest is not current (the failed ones); the others hear up-to-date.
    const before = sim.records().length;
    await hub.stopHub();
    await hub.startHub();
    const since = () => sim.records().slice(before);
    await sim.waitUntil(
      () =>
        sim.names.every((n) =>
          since().some((r) => r.agent === n && (r.k === 'desired' || r.k === 'up-to-date')),
        ),
      'every agent reconnected and resynced',
      60_000,
    );
    const resent = new Set(
      since()
        .filter((r) => r.k === 'desired')
        .map((r) => r.agent),
    );
    assert.deepEqual([...resent].sort(), [...failed].sort());
    assert.equal(
      sim.agents().reduce((n, a) => n + a.redundant, 0),
      0,
    );
  });
});
