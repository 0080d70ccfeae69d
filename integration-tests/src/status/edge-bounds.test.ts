// One cluster must never stall or exhaust the fleet (issue 14). Each test replays an
// attack made with one cluster's own valid NATS credentials, on its permitted subject,
// against a real nats-server and the real hub app, and shows that another cluster's
// events are still recorded and acked, before and after a hub restart:
//   1. events that grew the cluster's status record past NATS's max payload froze every
//      save, and with it every ack (persist, then ack), for the whole fleet;
//   2. an ack over gRPC with a 3.9 MB message did the same;
//   3. a flood of drift events of ~900 KB each grew the hub's memory without bound;
//   4. history replay over such events tripped nats-server's slow-consumer limit.
import assert from 'node:assert/strict';
import test from 'node:test';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { credentials } from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { EVENTS_STREAM, EVENT_LIMITS, createEvent } from '@flotilla/common';
import type { HubApp } from '@flotilla/hub';
import type { AgentStreamClient } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import { requireEnv, waitFor } from '@flotilla/test-env';
import {
  GOOD,
  ROGUE,
  api,
  driftOf,
  edgeWorld,
  goodApplied,
  publishAs,
  untilAcked,
  untilServing,
} from './edge-world.js';
import { REV, desired } from './one-commit-fleet.js';

const skip = await requireEnv(['nats']);

type ClusterView = {
  name: string;
  connected: boolean;
  appliedDigest: string;
  message: string;
  degraded?: string;
};
type Entry = { id: string; cluster: string; drift: { fields: string[] }[] };

const cluster = (hub: HubApp, name: string) => api<ClusterView>(hub, `/api/v1/clusters/${name}`);
const history = async (hub: HubApp, name: string, limit = 1_000): Promise<Entry[]> =>
  (await api<{ entries: Entry[] }>(hub, `/api/v1/history?cluster=${name}&limit=${limit}`)).entries;

function seqOf(ack: Awaited<ReturnType<typeof publishAs>>): number {
  if (ack instanceof Error) throw ack;
  return ack.seq;
}

// A health-changed event of ROGUE naming a made-up bundle, with a reason of `bytes`.
function bogusHealth(i: number, bytes: number) {
  return createEvent(ROGUE, 'health-changed', {
    bundle: `made-up-${i}`,
    revision: REV,
    state: 'Degraded',
    previous: 'Ready',
    counts: { ready: 0, progressing: 0, degraded: 1, failed: 0 },
    reasons: [`apps/Deployment/x/y: ${'r'.repeat(bytes)}`],
  });
}

test('oversized-health-events-of-one-cluster-never-stop-acks-for-the-fleet', { skip }, async () => {
  const w = await edgeWorld();
  let hub = w.newHub();
  try {
    await hub.start();
    await untilServing(hub);
    const rogue = await w.agent(ROGUE);
    const good = await w.agent(GOOD);
    // The attack as found: two events of ~600 KB. NATS refuses them now (over 64 KiB).
    for (const i of [1, 2]) await publishAs(rogue, 'health-changed', bogusHealth(i, 600_000));
    // And what passes: many made-up bundles, each with a 60 KB reason.
    for (let i = 3; i < 40; i++)
      seqOf(await publishAs(rogue, 'health-changed', bogusHealth(i, 60_000)));

    const seq = seqOf(await publishAs(good, 'applied', goodApplied()));
    await untilAcked(w, seq, "the other cluster's applied event acked (its status saved)");
    assert.equal((await cluster(hub, GOOD)).appliedDigest, desired(GOOD).digest);
    const rogueView = await cluster(hub, ROGUE);
    assert.match(rogueView.degraded ?? '', /over its limit, cut/, 'the rogue cluster is marked');
    const metrics = await (await fetch(`http://127.0.0.1:${hub.httpPort}/metrics`)).text();
    assert.match(metrics, /flotilla_input_cut_total\{cluster="rogue",what="health.reason"\} \d+/);

    await hub.stop(1_000);
    hub = w.newHub();
    await hub.start();
    await untilServing(hub);
    assert.equal((await cluster(hub, GOOD)).appliedDigest, desired(GOOD).digest, 'restored');
    const next = seqOf(await publishAs(good, 'applied', goodApplied('sha256:next')));
    await untilAcked(w, next, 'the next applied event acked after the restart');
    assert.equal((await cluster(hub, GOOD)).appliedDigest, 'sha256:next');
  } finally {
    await hub.stop(1_000);
    await w.stop();
  }
});

test('an-ack-with-a-huge-message-never-stops-acks-for-the-fleet', { skip }, async () => {
  const w = await edgeWorld();
  let hub = w.newHub();
  let client: AgentStreamClient | undefined;
  // A session of ROGUE (a real grpc-js client), connected; `ended` once the hub ends it.
  const session = async () => {
    client?.close();
    client = new (loadFlotillaProto().AgentStream)(
      `127.0.0.1:${hub.grpcPort}`,
      credentials.createInsecure(),
    ) as AgentStreamClient;
    const call = client.Connect();
    const s = { call, ended: '' };
    call.on('error', (err: Error) => (s.ended = err.message));
    call.on('data', () => undefined);
    const hello = { cluster: ROGUE, agentVersion: 'x', appliedDigest: '', appliedRevision: '' };
    call.write({ hello: { ...hello, protocolVersion: 1 } });
    await waitFor(async () => (await cluster(hub, ROGUE)).connected, { what: 'rogue session' });
    return s;
  };
  const ack = (message: string) => ({
    ack: {
      generation: 1,
      digest: desired(ROGUE).digest,
      revision: REV,
      result: 'ACK_RESULT_FAILED' as const,
      message,
      objectsApplied: 0,
      objectsFailed: 1,
    },
  });
  try {
    await hub.start();
    await untilServing(hub);
    // The ack as found: a 3.9 MB message. Refused at the wire now (the session ends), or kept.
    const first = await session();
    first.call.write(ack('m'.repeat(3_900_000)));
    await waitFor(
      async () => first.ended !== '' || (await cluster(hub, ROGUE)).message.length > 100_000,
      { what: 'the huge ack handled' },
    );
    const good = await w.agent(GOOD);
    const seq = seqOf(await publishAs(good, 'applied', goodApplied()));
    await untilAcked(w, seq, "the other cluster's applied event acked (its status saved)");
    assert.equal((await cluster(hub, GOOD)).appliedDigest, desired(GOOD).digest);

    // Under the wire limit: kept, but cut, and the cluster marked.
    const second = await session();
    second.call.write(ack(`second ${'m'.repeat(60_000)}`));
    await waitFor(async () => /ack\.message/.test((await cluster(hub, ROGUE)).degraded ?? ''), {
      what: 'the rogue ack cut and the cluster marked',
    });
    assert.ok((await cluster(hub, ROGUE)).message.length <= 1_024);

    await hub.stop(1_000);
    hub = w.newHub();
    await hub.start();
    await untilServing(hub);
    const next = seqOf(await publishAs(good, 'applied', goodApplied('sha256:next')));
    await untilAcked(w, next, 'the next applied event acked after the restart');
    assert.equal((await cluster(hub, GOOD)).appliedDigest, 'sha256:next');
  } finally {
    client?.close();
    await hub.stop(1_000);
    await w.stop();
  }
});

// Heap in use after a full collection, in MiB.
function heapMiB(): number {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  gc();
  return getHeapStatistics().used_heap_size / 1_048_576;
}

test('a-drift-flood-from-one-cluster-stays-within-its-budgets', { skip }, async () => {
  const w = await edgeWorld();
  let hub = w.newHub();
  try {
    await hub.start();
    await untilServing(hub);
    const rogue = await w.agent(ROGUE);
    const good = await w.agent(GOOD);
    for (const n of ['a', 'b', 'c'])
      seqOf(await publishAs(good, 'drift-detected', driftOf(GOOD, n, ['/data/x'])));
    await waitFor(async () => (await history(hub, GOOD)).length === 3, { what: 'good drift' });
    const before = heapMiB();

    // As found: drift events of ~900 KB (the stream may refuse them now) ...
    const huge = Array.from(
      { length: 900 },
      (_, i) => `/data/${String(i).padStart(4, '0')}${'k'.repeat(990)}`,
    );
    for (let i = 0; i < 3; i++)
      await publishAs(rogue, 'drift-detected', driftOf(ROGUE, `h${i}`, huge));
    // ... and a flood of 1,500 events of 55 KB each that NATS accepts (under 64 KiB).
    const paths = huge.slice(0, 55);
    for (let i = 0; i < 1_500; i++)
      seqOf(await publishAs(rogue, 'drift-detected', driftOf(ROGUE, `o${i}`, paths)));
    const last = seqOf(await publishAs(good, 'drift-detected', driftOf(GOOD, 'd', ['/data/x'])));
    await untilAcked(w, last, 'the flood and the marker after it folded and saved');
    const grown = heapMiB() - before;
    // 1,500 × 55 KB of paths is 82 MB; the history keeps 8 MiB of a cluster at most.
    assert.ok(grown < 40, `the hub's heap grew ${grown.toFixed(1)} MiB for the flood`);
    const kept = await history(hub, ROGUE, 1_000);
    assert.ok(kept.length > 0 && kept.length < 1_500, `rogue history holds ${kept.length} entries`);
    assert.ok(
      kept.every((e) => e.drift.every((o) => o.fields.length <= 20)),
      'fields cut',
    );
    assert.equal((await history(hub, GOOD)).length, 4, "the other cluster's history is whole");
    const info = await (await jetstreamManager(w.hubNc)).streams.info(EVENTS_STREAM);
    assert.equal(info.config.max_msg_size, EVENT_LIMITS.eventBytes, 'the stream refuses bigger');
    assert.equal(info.config.max_msgs_per_subject, 2_000, 'a flood pushes out only its own');

    await hub.stop(1_000);
    hub = w.newHub();
    await hub.start();
    await untilServing(hub);
    await waitFor(async () => (await history(hub, GOOD)).length === 4, {
      what: "the other cluster's history replayed whole",
      timeoutMs: 20_000,
    });
    const replayed = heapMiB() - before;
    assert.ok(replayed < 40, `after the restart the heap is ${replayed.toFixed(1)} MiB above`);
  } finally {
    await hub.stop(1_000);
    await w.stop();
  }
});

test('history-replay-finishes-over-big-events-left-in-the-stream', { skip }, async () => {
  const w = await edgeWorld();
  let hub: HubApp | undefined;
  try {
    // The stream as an agent or an older hub made it: no size limits.
    const jsm = await jetstreamManager(w.hubNc);
    await jsm.streams.add({
      name: EVENTS_STREAM,
      subjects: ['flotilla.events.>', 'flotilla.hub.sessions.>'],
    });
    const good = await w.agent(GOOD);
    seqOf(await publishAs(good, 'drift-detected', driftOf(GOOD, 'first', ['/data/x'])));
    // Left by agents from before the 64 KiB payload limit (published here with the hub's
    // own user, which has none).
    const big = Array.from({ length: 900 }, (_, i) => `/data/${i}${'k'.repeat(990)}`);
    for (let i = 0; i < 150; i++)
      seqOf(await publishAs(w.hubNc, 'drift-detected', driftOf(ROGUE, `big${i}`, big)));
    const last = seqOf(await publishAs(good, 'drift-detected', driftOf(GOOD, 'last', ['/data/x'])));

    hub = w.newHub();
    await hub.start();
    await untilAcked(w, last, 'the first hub folding every event, big ones included');
    await hub.stop(1_000);

    // Its durable consumer is at the end: only the replay brings the history back.
    hub = w.newHub();
    await hub.start();
    await waitFor(async () => (await history(hub as HubApp, GOOD)).length === 2, {
      what: 'the history replayed past 150 events of 900 KB',
      timeoutMs: 30_000,
    });
    const after = seqOf(await publishAs(good, 'drift-detected', driftOf(GOOD, 'after', ['/x'])));
    await untilAcked(w, after, 'events after the replay folded and acked');
    assert.equal((await history(hub, GOOD)).length, 3);
    const cfg = (await jsm.streams.info(EVENTS_STREAM)).config;
    assert.equal(
      cfg.max_msg_size,
      EVENT_LIMITS.eventBytes,
      'the hub added its limits to the stream an agent made',
    );
  } finally {
    await hub?.stop(1_000);
    await w.stop();
  }
});
