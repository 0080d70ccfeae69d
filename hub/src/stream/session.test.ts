import assert from 'node:assert/strict';
import test from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { ClusterCapabilities, DesiredState } from '@flotilla/common';
import { silentLogger } from '@flotilla/common';
import type { AgentMessage__Output, Hello__Output, HubMessage } from '@flotilla/proto';
import { EncodingCache } from './chunks.js';
import { configMap, desiredState } from './fixtures.js';
import { HeartbeatWheel, STALL_MIN_MS } from './heartbeats.js';
import { Session } from './session.js';
import type { SessionWire } from './session.js';
import type { SessionObserver } from './types.js';

class FakeWire implements SessionWire {
  messages: HubMessage[] = [];
  ended: { code: GrpcStatus; details: string } | 'ok' | undefined;
  full = false;
  private drained: (() => void) | undefined;
  write(m: HubMessage): boolean {
    this.messages.push(m);
    return !this.full;
  }
  waitDrain(): Promise<void> {
    return new Promise((r) => (this.drained = r));
  }
  drain(): void {
    this.full = false;
    this.drained?.();
  }
  end(error?: { code: GrpcStatus; details: string }): void {
    this.ended = error ?? 'ok';
  }
  kinds(): string[] {
    return this.messages.map((m) => Object.keys(m)[0] as string);
  }
}

function harness(
  states: Map<string, DesiredState>,
  heartbeatIntervalMs = 60_000,
  capabilitiesChange = false,
  renderWaitMs = 60_000,
  capabilitiesVersion?: (cluster: string) => number | undefined,
) {
  const wire = new FakeWire();
  const cache = new EncodingCache();
  const events: string[] = [];
  const reports: [string, ClusterCapabilities][] = [];
  const hellos: object[] = [];
  let gen = 0;
  let version = 0;
  const observer: SessionObserver = {
    connected: (c, _s, h) => {
      hellos.push(h);
      events.push(`connected ${c}`);
    },
    seen: () => {},
    acked: (c, a) => events.push(`acked ${c} ${a.result}`),
    disconnected: (c, _s, r) => events.push(`disconnected ${c} ${r}`),
  };
  const session = new Session('s1', wire, {
    source: {
      get: (c) => states.get(c),
      subscribe: () => () => {},
      ...(capabilitiesVersion ? { capabilitiesVersion } : {}),
    },
    observer,
    capabilities: {
      get version() {
        return version;
      },
      reported: (c, caps) => {
        reports.push([c, caps]);
        if (capabilitiesChange) version++;
        return capabilitiesChange;
      },
    },
    renderWaitMs,
    cache,
    nextGeneration: () => ++gen,
    onActive: () => {},
    onClosing: () => {},
    logger: silentLogger(),
    heartbeatIntervalMs,
    heartbeats: new HeartbeatWheel({ intervalMs: heartbeatIntervalMs, slots: 1 }),
  });
  return { wire, events, session, reports, hellos, cache };
}

function hello(
  cluster: string,
  appliedDigest = '',
  appliedRevision = '',
  capabilities: Hello__Output['capabilities'] = null,
): AgentMessage__Output {
  const h: Hello__Output = {
    cluster,
    agentVersion: 'test',
    capabilities,
    appliedDigest,
    appliedRevision,
    protocolVersion: 1,
    sentAtMs: 0,
  };
  return { kind: 'hello', hello: h };
}

// A short pause, for checks that nothing (more) was sent.
const settle = () => delay(20);
// Waits until the wire holds n messages (encoding is asynchronous; a loaded machine may
// take longer than any fixed pause). Gives up after 5 s and lets the assertion report.
async function sent(wire: FakeWire, n: number): Promise<void> {
  for (let waited = 0; wire.messages.length < n && waited < 5_000; waited += 5) await delay(5);
}

test('hello-gets-welcome-then-the-desired-state', async () => {
  const state = desiredState('c1', 'r1');
  const { wire, session, events, cache } = harness(new Map([['c1', state]]));
  session.received(hello('c1'));
  await sent(wire, 2);
  assert.deepEqual(wire.kinds(), ['welcome', 'desired']);
  const chunk = wire.messages[1]?.desired;
  assert.equal(chunk?.digest, state.digest);
  assert.equal(chunk?.generation, 1);
  assert.equal(chunk?.total, 1);
  assert.deepEqual(events, ['connected c1']);
  await settle();
  assert.equal(cache.size, 0, 'the encoding is not kept once written');
  session.close('test');
});

test('agent-already-at-the-digest-gets-up-to-date-and-no-state', async () => {
  const state = desiredState('c1', 'r2');
  const { wire, session } = harness(new Map([['c1', state]]));
  session.received(hello('c1', state.digest, 'r1'));
  await sent(wire, 2);
  assert.deepEqual(wire.kinds(), ['welcome', 'upToDate']);
  assert.deepEqual(wire.messages[1]?.upToDate, { digest: state.digest, revision: 'r2' });
  session.close('test');
});

test('revision-only-change-sends-up-to-date-and-content-change-sends-new-generation', async () => {
  const states = new Map([['c1', desiredState('c1', 'r1')]]);
  const { wire, session } = harness(states);
  session.received(hello('c1'));
  await sent(wire, 2);
  states.set('c1', desiredState('c1', 'r2'));
  session.desiredChanged();
  await sent(wire, 3);
  session.desiredChanged(); // nothing new: nothing sent
  await settle();
  states.set('c1', desiredState('c1', 'r3', [configMap('b')]));
  session.desiredChanged();
  await sent(wire, 4);
  assert.deepEqual(wire.kinds(), ['welcome', 'desired', 'upToDate', 'desired']);
  assert.equal(wire.messages[2]?.upToDate?.revision, 'r2');
  assert.equal(wire.messages[3]?.desired?.generation, 2);
  session.close('test');
});

test('writes-wait-for-drain-and-only-the-latest-state-is-sent-after', async () => {
  const states = new Map([['c1', desiredState('c1', 'r1')]]);
  const { wire, session } = harness(states);
  wire.full = true;
  session.received(hello('c1'));
  await settle();
  assert.deepEqual(wire.kinds(), ['welcome'], 'nothing more until drain');
  for (const r of ['r2', 'r3', 'r4']) {
    states.set('c1', desiredState('c1', r, [configMap(r)]));
    session.desiredChanged();
  }
  wire.drain();
  await sent(wire, 2);
  await settle();
  const revisions = wire.messages.filter((m) => m.desired).map((m) => m.desired?.revision);
  assert.deepEqual(revisions, ['r4'], 'intermediate states are skipped, never queued');
  session.close('test');
});

test('first-message-not-hello-closes-with-invalid-argument', () => {
  const { wire, session, events } = harness(new Map());
  session.received({ kind: 'heartbeat', heartbeat: { sentAtMs: 1 } });
  assert.equal(typeof wire.ended === 'object' && wire.ended.code, GrpcStatus.INVALID_ARGUMENT);
  assert.equal(session.state, 'closing');
  assert.deepEqual(events, [], 'a session that never started is not reported');
});

test('unknown-cluster-keeps-session-and-gets-state-when-it-appears', async () => {
  const states = new Map<string, DesiredState>();
  const { wire, session } = harness(states);
  session.received(hello('late'));
  await settle();
  assert.deepEqual(wire.kinds(), ['welcome']);
  states.set('late', desiredState('late', 'r1'));
  session.desiredChanged();
  await sent(wire, 2);
  assert.deepEqual(wire.kinds(), ['welcome', 'desired']);
  session.close('test');
});

test('silent-agent-is-closed-after-three-heartbeat-intervals', async () => {
  const { wire, session, events } = harness(new Map(), 20);
  session.received(hello('c1'));
  // Bounded: on a busy machine the wheel's ticks may be late (and a late tick judges nothing).
  for (let waited = 0; wire.ended === undefined && waited < 5_000; waited += 20) await delay(20);
  assert.ok(wire.kinds().includes('heartbeat'), 'idle hub sends heartbeats');
  assert.equal(typeof wire.ended === 'object' && wire.ended.code, GrpcStatus.DEADLINE_EXCEEDED);
  assert.match(events.at(-1) ?? '', /^disconnected c1 nothing received/);
});

test('agent-heartbeat-waiting-behind-a-hub-stall-does-not-close-the-session', async () => {
  const intervalMs = 200;
  const { wire, session, events } = harness(new Map(), intervalMs);
  session.received(hello('c1'));
  await delay(20);
  // The hub's loop is held longer than three intervals; the agent's heartbeat sits in the
  // socket meanwhile and is read after this turn's timers (a timer due after them).
  const until = Date.now() + Math.max(4 * intervalMs, STALL_MIN_MS + 100);
  while (Date.now() < until) {
    /* held */
  }
  setTimeout(() => session.received({ kind: 'heartbeat', heartbeat: { sentAtMs: 1 } }), 1);
  await delay(50);
  assert.equal(wire.ended, undefined, `closed after a stall: ${events.join('; ')}`);
  assert.equal(session.state, 'active');
  session.close('test');
});

test('heartbeats-go-out-while-the-state-waits-in-the-send-queue', async () => {
  const states = new Map([['c1', desiredState('c1', 'r1')]]);
  const { wire, session, cache } = harness(states, 50);
  // A connect storm: this session's send is far down the queue.
  let release!: () => void;
  const queued = new Promise<void>((r) => (release = r));
  const turn = cache.turn.bind(cache);
  Object.assign(cache, { turn: <T>(work: () => T) => queued.then(() => turn(work)) });
  session.received(hello('c1'));
  for (let waited = 0; !wire.kinds().includes('heartbeat') && waited < 5_000; waited += 20)
    await delay(20);
  assert.deepEqual(wire.kinds().slice(0, 2), ['welcome', 'heartbeat']);
  release();
  await sent(wire, 3);
  assert.ok(wire.kinds().includes('desired'), 'the state follows once encoded');
  session.close('test');
});

test('capabilities-in-hello-and-later-messages-go-to-the-sink-not-to-observers', async () => {
  const { wire, session, reports, hellos } = harness(new Map());
  const caps = { kubeVersion: 'v1.35.4', apiVersions: ['apps/v1', 'apps/v1/Deployment', 'v1'] };
  session.received(hello('c1', '', '', caps));
  await sent(wire, 1);
  session.received({
    kind: 'capabilities',
    capabilities: { kubeVersion: 'v1.35.4', apiVersions: ['v1', 'monitoring.coreos.com/v1'] },
  });
  assert.deepEqual(reports, [
    ['c1', caps],
    ['c1', { kubeVersion: 'v1.35.4', apiVersions: ['v1', 'monitoring.coreos.com/v1'] }],
  ]);
  // Observers (status, session events) keep hellos per session: never the capability lists.
  assert.equal(hellos.length, 1);
  assert.ok(!('capabilities' in (hellos[0] as object)));
  session.close('test');
});

test('a-hello-without-capabilities-reports-nothing', async () => {
  const { wire, session, reports } = harness(new Map());
  session.received(hello('c1'));
  await sent(wire, 1);
  assert.deepEqual(reports, []);
  session.close('test');
});

test('new-capabilities-in-hello-hold-the-first-state-until-the-re-render-finishes', async () => {
  const states = new Map([['c1', desiredState('c1', 'r1')]]);
  const { wire, session } = harness(states, 60_000, true);
  const caps = { kubeVersion: 'v1.35.4', apiVersions: ['v1'] };
  session.received(hello('c1', '', '', caps));
  await sent(wire, 1);
  await settle();
  assert.deepEqual(
    wire.kinds(),
    ['welcome'],
    'what was rendered for other capabilities is not sent',
  );
  // The re-render changed nothing for this cluster: the held state goes out anyway.
  session.renderFinished();
  await sent(wire, 2);
  assert.deepEqual(wire.kinds(), ['welcome', 'desired']);
  session.close('test');
});

test('a-held-first-state-waits-for-a-rendering-begun-after-the-agents-latest-report', async () => {
  const states = new Map([['c1', desiredState('c1', 'r1')]]);
  let renderedWith = 0;
  const { wire, session } = harness(states, 60_000, true, 60_000, () => renderedWith);
  session.received(hello('c1', '', '', { kubeVersion: 'v1.35.4', apiVersions: ['v1'] }));
  await sent(wire, 1);
  // The agent saw a CRD arrive before its first state: version 2 now.
  session.received({
    kind: 'capabilities',
    capabilities: { kubeVersion: 'v1.35.4', apiVersions: ['v1', 'monitoring.coreos.com/v1'] },
  });
  renderedWith = 1; // the re-render for the hello, begun before the second report
  session.desiredChanged();
  session.renderFinished();
  await settle();
  assert.deepEqual(wire.kinds(), ['welcome']);
  renderedWith = 2;
  session.renderFinished();
  await sent(wire, 2);
  assert.deepEqual(wire.kinds(), ['welcome', 'desired']);
  session.close('test');
});

test('a-held-first-state-goes-out-after-the-wait-when-no-render-comes', async () => {
  const states = new Map([['c1', desiredState('c1', 'r1')]]);
  const { wire, session } = harness(states, 60_000, true, 30);
  session.received(hello('c1', '', '', { kubeVersion: 'v1.35.4', apiVersions: ['v1'] }));
  await sent(wire, 2);
  assert.deepEqual(wire.kinds(), ['welcome', 'desired']);
  session.close('test');
});

test('a-fan-out-writes-in-turns-and-other-work-runs-between-them', async () => {
  // Writes cost time too: a turn's budget covers encoding and writing, so a query waits
  // for one turn, not for every session that the turn's encodings released.
  const busy = (ms: number): void => {
    const end = performance.now() + ms;
    while (performance.now() < end);
  };
  class SlowWire extends FakeWire {
    override write(m: HubMessage): boolean {
      if (m.desired) busy(2);
      return super.write(m);
    }
  }
  const cache = new EncodingCache({ budgetMs: 5 });
  const n = 20;
  const wires = Array.from({ length: n }, () => new SlowWire());
  const sessions = wires.map(
    (wire, i) =>
      new Session(`s${i}`, wire, {
        source: { get: (c) => desiredState(c, 'r1'), subscribe: () => () => {} },
        observer: { connected() {}, seen() {}, acked() {}, disconnected() {} },
        cache,
        nextGeneration: () => 1,
        onActive: () => {},
        onClosing: () => {},
        logger: silentLogger(),
        heartbeatIntervalMs: 60_000,
        heartbeats: new HeartbeatWheel({ intervalMs: 60_000, slots: 1 }),
      }),
  );
  const written = (): number => wires.filter((w) => w.kinds().includes('desired')).length;
  // Between turns of the loop, what else waits (a query) sees how far the fan-out got.
  const seen: number[] = [];
  const watch = (): void => {
    seen.push(written());
    if (written() < n && seen.length < 10_000) setImmediate(watch);
  };
  sessions.forEach((s, i) => s.received(hello(`c${i}`)));
  setImmediate(watch);
  for (let waited = 0; written() < n && waited < 5_000; waited += 5) await delay(5);
  assert.equal(written(), n);
  assert.ok(
    seen.some((k) => k > 0 && k < n),
    `other work ran only before or after the whole fan-out: ${seen.join(',')}`,
  );
  assert.ok(cache.turnCount > 1);
  for (const s of sessions) s.close('test');
});
