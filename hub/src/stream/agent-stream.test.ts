import assert from 'node:assert/strict';
import test from 'node:test';
import { credentials, Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { durations, silentLogger } from '@flotilla/common';
import type { AgentMessage, AgentStreamClient, HubMessage__Output } from '@flotilla/proto';
import { RECONNECT_TRAILER, loadFlotillaProto } from '@flotilla/proto';
import { AgentStreamService } from './agent-stream.js';
import { decodeDesiredState } from './chunks.js';
import { DesiredStateStore } from './desired-store.js';
import { configMap, desiredState } from './fixtures.js';
import { startGrpcServer } from './grpc-server.js';
import type { CapabilitiesSink, SessionObserver } from './types.js';
import { CapabilitiesStore } from '../capabilities/store.js';

const TOKEN = 'sekret-token';

async function setup(
  clusters = ['edge-1'],
  notifySlice?: number,
  capabilities?: CapabilitiesSink,
  sendBudgetMs?: number,
) {
  const store = new DesiredStateStore();
  store.replace(new Map(clusters.map((c) => [c, desiredState(c, 'rev-1')])));
  const seen: string[] = [];
  const observer: SessionObserver = {
    connected: (c) => seen.push(`connected ${c}`),
    seen: () => {},
    acked: (c, a) => seen.push(`acked ${c} ${a.generation} ${a.result}`),
    disconnected: (c, _s, reason) => seen.push(`disconnected ${c} ${reason.split(' ')[0]}`),
  };
  const service = new AgentStreamService({
    source: store,
    observer,
    logger: silentLogger(),
    token: TOKEN,
    heartbeatIntervalMs: 10_000,
    ...(notifySlice ? { notifySlice } : {}),
    ...(capabilities ? { capabilities } : {}),
    ...(sendBudgetMs !== undefined ? { sendBudgetMs } : {}),
  });
  const server = await startGrpcServer('127.0.0.1:0', {
    agentStream: service.handlers(),
    fleet: { ListClusters: (_c, cb) => cb(null, { clusters: [] }) },
  });
  const proto = loadFlotillaProto();
  const client = new proto.AgentStream(
    `127.0.0.1:${server.port}`,
    credentials.createInsecure(),
  ) as AgentStreamClient;
  const stop = async () => {
    client.close();
    service.stop();
    await server.stop(1000);
  };
  return { store, seen, service, client, stop };
}

function open(client: AgentStreamClient, token: string) {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  const call = client.Connect(md);
  const received: HubMessage__Output[] = [];
  const waiters: (() => void)[] = [];
  call.on('data', (m: HubMessage__Output) => {
    received.push(m);
    waiters.splice(0).forEach((w) => w());
  });
  const status = new Promise<ServiceError | 'ok'>((resolve) => {
    call.on('error', (e: ServiceError) => resolve(e));
    call.on('end', () => resolve('ok'));
  });
  const until = async (n: number) => {
    while (received.length < n) await new Promise<void>((r) => waiters.push(r));
  };
  const send = (m: AgentMessage) => call.write(m);
  return { call, received, until, status, send };
}

const hello = (
  cluster: string,
  capabilities?: { kubeVersion: string; apiVersions: string[] },
): AgentMessage => ({
  hello: {
    cluster,
    agentVersion: 't',
    appliedDigest: '',
    appliedRevision: '',
    protocolVersion: 1,
    ...(capabilities ? { capabilities } : {}),
  },
});

test('grpc-hello-welcome-desired-ack-round-trip', async () => {
  const h = await setup();
  try {
    const a = open(h.client, TOKEN);
    a.send(hello('edge-1'));
    await a.until(2);
    assert.equal(a.received[0]?.kind, 'welcome');
    assert.equal(a.received[0]?.welcome?.heartbeatIntervalMs, 10_000);
    const chunk = a.received[1]?.desired;
    assert.ok(chunk);
    const state = await decodeDesiredState([chunk]);
    assert.equal(state.revision, 'rev-1');
    a.send({
      ack: {
        generation: chunk.generation,
        digest: chunk.digest,
        revision: chunk.revision,
        result: 'ACK_RESULT_APPLIED',
        message: '',
        objectsApplied: 1,
        objectsFailed: 0,
      },
    });
    // A new commit reaches the live session.
    h.store.replace(new Map([['edge-1', desiredState('edge-1', 'rev-2')]]));
    await a.until(3);
    assert.deepEqual(a.received[2]?.upToDate, { digest: chunk.digest, revision: 'rev-2' });
    a.call.end();
    assert.equal(await a.status, 'ok');
    assert.deepEqual(h.seen.slice(0, 3), [
      'connected edge-1',
      'acked edge-1 1 ACK_RESULT_APPLIED',
      'disconnected edge-1 agent',
    ]);
  } finally {
    await h.stop();
  }
});

test('a-stopping-hub-ends-streams-unavailable-asking-agents-to-redial-soon', async () => {
  const h = await setup();
  try {
    const a = open(h.client, TOKEN);
    a.send(hello('edge-1'));
    await a.until(2);
    h.service.stop();
    const st = await a.status;
    assert.notEqual(st, 'ok');
    assert.equal((st as ServiceError).code, GrpcStatus.UNAVAILABLE);
    assert.deepEqual((st as ServiceError).metadata.get(RECONNECT_TRAILER), [
      String(durations.hubRestartRedial),
    ]);
    // A stream opened while the hub stops is refused with the same request.
    const b = open(h.client, TOKEN);
    b.send(hello('edge-1'));
    const st2 = await b.status;
    assert.equal((st2 as ServiceError).code, GrpcStatus.UNAVAILABLE);
    assert.deepEqual((st2 as ServiceError).metadata.get(RECONNECT_TRAILER), [
      String(durations.hubRestartRedial),
    ]);
    assert.ok(h.seen.includes('disconnected edge-1 hub'), h.seen.join('; '));
  } finally {
    await h.stop();
  }
});

test('grpc-wrong-token-is-unauthenticated', async () => {
  const h = await setup();
  try {
    const a = open(h.client, 'wrong');
    a.send(hello('edge-1'));
    const st = await a.status;
    assert.notEqual(st, 'ok');
    assert.equal((st as ServiceError).code, GrpcStatus.UNAUTHENTICATED);
    assert.doesNotMatch((st as ServiceError).details, /sekret/);
    assert.equal(a.received.length, 0);
  } finally {
    await h.stop();
  }
});

test('grpc-second-session-for-a-cluster-replaces-the-first', async () => {
  const h = await setup();
  try {
    const first = open(h.client, TOKEN);
    first.send(hello('edge-1'));
    await first.until(2);
    const second = open(h.client, TOKEN);
    second.send(hello('edge-1'));
    await second.until(2);
    const st = await first.status;
    assert.equal((st as ServiceError).code, GrpcStatus.ABORTED);
    assert.equal(h.service.sessionCount, 1);
    assert.ok(h.seen.includes('disconnected edge-1 replaced'));
    second.call.end();
    await second.status;
  } finally {
    await h.stop();
  }
});

test('a-fan-out-is-told-after-the-render-returns-in-slices-and-reaches-every-session', async () => {
  const names = ['edge-1', 'edge-2', 'edge-3', 'edge-4', 'edge-5'];
  const h = await setup(names, 2);
  try {
    const agents = names.map((c) => {
      const a = open(h.client, TOKEN);
      a.send(hello(c));
      return a;
    });
    await Promise.all(agents.map((a) => a.until(2)));
    // Sessions read their state when told: count the reads made while the store's
    // listener runs (the service looks each changed cluster up once to drop a leaver).
    let reads = 0;
    const get = h.store.get.bind(h.store);
    h.store.get = (c) => (reads++, get(c));
    h.store.replace(new Map(names.map((c) => [c, desiredState(c, 'rev-2', [configMap('b')])])));
    assert.equal(reads, names.length, 'no session is told inside the render that changed it');
    await Promise.all(agents.map((a) => a.until(3)));
    assert.equal(reads, 2 * names.length);
    for (const a of agents) {
      const chunk = a.received[2]?.desired;
      assert.ok(chunk, `expected a new state, got ${a.received[2]?.kind}`);
      assert.equal((await decodeDesiredState([chunk])).revision, 'rev-2');
    }
    for (const a of agents) a.call.end();
    await Promise.all(agents.map((a) => a.status));
  } finally {
    await h.stop();
  }
});

/** Resolves after the immediates queued before it (one turn of the event loop's check phase). */
const nextTurn = () => new Promise<void>((r) => setImmediate(r));

/** Opens a session per cluster and waits for its welcome and first state. */
async function connectAll(h: Awaited<ReturnType<typeof setup>>, names: string[]) {
  const agents = names.map((c) => {
    const a = open(h.client, TOKEN);
    a.send(hello(c));
    return a;
  });
  await Promise.all(agents.map((a) => a.until(2)));
  return agents;
}

test('a-fan-out-to-150-sessions-tells-every-one-in-a-single-turn-of-the-event-loop', async () => {
  const names = Array.from({ length: 150 }, (_, i) => `edge-${i}`);
  const h = await setup(names, undefined, undefined, 60_000);
  try {
    const agents = await connectAll(h, names);
    let reads = 0;
    const get = h.store.get.bind(h.store);
    h.store.get = (c) => (reads++, get(c));
    h.store.replace(new Map(names.map((c) => [c, desiredState(c, 'rev-2', [configMap('b')])])));
    assert.equal(reads, names.length, 'the render itself tells no session');
    await nextTurn();
    // Telling a session only queues its send: ten turns of 100, each after a pass over
    // acks, events and queries, delayed the fan-out's last sends.
    assert.equal(reads, 2 * names.length, 'every session was told in the first turn');
    await Promise.all(agents.map((a) => a.until(3)));
    for (const a of agents) a.call.end();
    await Promise.all(agents.map((a) => a.status));
  } finally {
    await h.stop();
  }
});

test('telling-sessions-stops-for-the-turn-once-it-has-taken-the-send-budget', async () => {
  const names = ['edge-1', 'edge-2', 'edge-3', 'edge-4', 'edge-5'];
  const h = await setup(names, undefined, undefined, 1);
  try {
    const agents = await connectAll(h, names);
    let reads = 0;
    const get = h.store.get.bind(h.store);
    h.store.get = (c) => {
      reads++;
      // A read longer than the 1 ms budget: each turn tells one session.
      const until = performance.now() + 3;
      while (performance.now() < until);
      return get(c);
    };
    h.store.replace(new Map(names.map((c) => [c, desiredState(c, 'rev-2', [configMap('b')])])));
    await nextTurn();
    assert.equal(reads, names.length + 1, 'one session told in the first turn');
    await Promise.all(agents.map((a) => a.until(3)));
    for (const a of agents) {
      const chunk = a.received[2]?.desired;
      assert.ok(chunk, `expected a new state, got ${a.received[2]?.kind}`);
      assert.equal((await decodeDesiredState([chunk])).revision, 'rev-2');
    }
    for (const a of agents) a.call.end();
    await Promise.all(agents.map((a) => a.status));
  } finally {
    await h.stop();
  }
});

test('a-render-begun-before-the-agents-capabilities-report-does-not-release-its-held-first-state', async () => {
  const caps = new CapabilitiesStore({ logger: silentLogger() });
  const h = await setup(['edge-1'], undefined, caps);
  try {
    // The start-up render is running: it began before any agent reported (version 0).
    const startedBefore = caps.version;
    const a = open(h.client, TOKEN);
    a.send(
      hello('edge-1', { kubeVersion: 'v1.35.4', apiVersions: ['v1', 'monitoring.coreos.com/v1'] }),
    );
    await a.until(1);
    assert.equal(a.received[0]?.kind, 'welcome');
    assert.ok(caps.version > startedBefore, 'the report changed the capabilities');
    // It finishes after the report, with a new state made for the default capabilities.
    const defaults = desiredState('edge-1', 'rev-1', [configMap('app')]);
    h.store.replace(new Map([['edge-1', defaults]]), () => startedBefore);
    h.service.rendered();
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(
      a.received.map((m) => m.kind),
      ['welcome'],
      'a state rendered without the reported capabilities is not sent',
    );
    // The re-render for the report finishes: its state is the first one sent.
    const reported = desiredState('edge-1', 'rev-1', [configMap('app'), configMap('monitor')]);
    const version = caps.version;
    h.store.replace(new Map([['edge-1', reported]]), () => version);
    h.service.rendered();
    await a.until(2);
    const chunk = a.received[1]?.desired;
    assert.ok(chunk, `expected a desired state, got ${a.received[1]?.kind}`);
    assert.equal(chunk.digest, reported.digest);
    assert.equal(a.received.length, 2);
    a.call.end();
    await a.status;
  } finally {
    await h.stop();
  }
});

test('a-render-that-changes-nothing-but-began-after-the-report-releases-the-held-first-state', async () => {
  const caps = new CapabilitiesStore({ logger: silentLogger() });
  const h = await setup(['edge-1'], undefined, caps);
  try {
    const a = open(h.client, TOKEN);
    a.send(hello('edge-1', { kubeVersion: 'v1.35.4', apiVersions: ['v1'] }));
    await a.until(1);
    // A rollout tick or another source re-delivers the old rendering: still held.
    h.store.replace(new Map([['edge-1', desiredState('edge-1', 'rev-1')]]), () => 0);
    h.service.rendered();
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(a.received.length, 1);
    // The re-render gives the same state for this cluster: the held state goes out.
    const version = caps.version;
    h.store.replace(new Map([['edge-1', desiredState('edge-1', 'rev-1')]]), () => version);
    h.service.rendered();
    await a.until(2);
    assert.equal(a.received[1]?.desired?.digest, desiredState('edge-1', 'rev-1').digest);
    a.call.end();
    await a.status;
  } finally {
    await h.stop();
  }
});
