// HubConnection against an in-process gRPC server speaking our own AgentStream protocol.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { silentLogger } from '@flotilla/common';
import { configMap, makeState } from '../testing/desired.js';
import { ScriptedHub, sendState, until, within } from '../testing/scripted-hub.js';
import type { ServerCall } from '../testing/scripted-hub.js';
import { HubConnection } from './hub-connection.js';
import type { HubConnectionOptions, HubHandler, ReceivedState } from './hub-connection.js';

const state = makeState('east', 'rev1', [
  { name: 'web', objects: [configMap('web', 'a', { x: '1' })] },
]);

function send(call: ServerCall, generation: number, digest = state.digest): void {
  sendState(call, state, generation, 50, digest);
}

describe('hub connection', () => {
  const hub = new ScriptedHub();
  // Every connection a test opens is stopped after it, passed or failed: a connection
  // left dialling keeps the test process alive after the server is gone.
  const conns: HubConnection[] = [];
  before(() => hub.start());
  afterEach(() =>
    within(Promise.all(conns.splice(0).map((c) => c.stop())), 'stopping connections'),
  );
  after(() => hub.server.forceShutdown());

  const CAPS = { kubeVersion: 'v1.35.4', apiVersions: ['apps/v1', 'apps/v1/Deployment', 'v1'] };

  function connect(
    received: ReceivedState[],
    heartbeatMs = 10_000,
    more: Partial<HubConnectionOptions> = {},
  ): HubConnection {
    const handler: HubHandler = {
      appliedMark: () => ({ digest: 'sha256:old', revision: 'rev0' }),
      capabilities: () => CAPS,
      onDesired: (r) => received.push(r),
      onUpToDate: () => {},
    };
    const conn = new HubConnection(
      {
        cluster: 'east',
        address: `127.0.0.1:${hub.port}`,
        agentVersion: '0.1.0',
        token: 's3cret',
        insecure: true,
        keepaliveTimeMs: 20_000,
        keepaliveTimeoutMs: 10_000,
        reconnectInitialMs: 20,
        reconnectMaxMs: 50,
        heartbeatMs,
        logger: silentLogger(),
        ...more,
      },
      handler,
    );
    conns.push(conn);
    return conn;
  }

  it('hello-then-verified-desired-state-then-ack', async () => {
    hub.streams = [];
    hub.onStream = (call) => {
      call.write({ welcome: { session: 's1', heartbeatIntervalMs: 10_000, protocolVersion: 1 } });
      send(call, 7);
    };
    const received: ReceivedState[] = [];
    const conn = connect(received);
    conn.start();
    const got = await until(() => received[0], 'desired state');
    assert.deepEqual(got, { session: 's1', generation: 7, state });
    const stream = hub.streams[0];
    assert.equal(stream?.auth, 'Bearer s3cret');
    const { sentAtMs, ...hello } = stream?.received[0]?.hello ?? {};
    // The agent's clock, for the hub to tell how far it is off its own.
    assert.ok(Math.abs(Number(sentAtMs) - Date.now()) < 60_000, `sentAtMs ${String(sentAtMs)}`);
    assert.deepEqual(hello, {
      cluster: 'east',
      agentVersion: '0.1.0',
      appliedDigest: 'sha256:old',
      appliedRevision: 'rev0',
      protocolVersion: 1,
      capabilities: CAPS,
    });
    assert.equal(conn.machine.state, 'connected');
    // A CRD was installed: the change goes to the hub on the open stream.
    const more = {
      kubeVersion: 'v1.35.4',
      apiVersions: [...CAPS.apiVersions, 'monitoring.coreos.com/v1'],
    };
    await conn.reportCapabilities(more);
    const reported = await until(
      () => stream?.received.find((m) => m.capabilities)?.capabilities,
      'capabilities message',
    );
    assert.deepEqual(reported, more);
    assert.equal(
      await conn.ack('s1', {
        generation: 7,
        digest: state.digest,
        revision: 'rev1',
        result: 'partial',
        message: 'm',
        objectsApplied: 1,
        objectsFailed: 1,
      }),
      true,
    );
    const ack = await until(() => stream?.received.find((m) => m.ack)?.ack, 'ack');
    assert.deepEqual([ack.generation, ack.result, ack.objectsFailed], [7, 'ACK_RESULT_PARTIAL', 1]);
    assert.equal(
      await conn.ack('old-session', {
        generation: 7,
        digest: '',
        revision: '',
        result: 'applied',
        message: '',
        objectsApplied: 0,
        objectsFailed: 0,
      }),
      false,
    );
    await conn.stop();
    assert.equal(conn.machine.state, 'closed');
  });

  it('a-state-with-a-wrong-digest-is-acked-failed-and-not-handed-over', async () => {
    hub.streams = [];
    hub.onStream = (call) => {
      call.write({ welcome: { session: 's2', heartbeatIntervalMs: 10_000, protocolVersion: 1 } });
      send(call, 1, 'sha256:bogus');
    };
    const received: ReceivedState[] = [];
    const conn = connect(received);
    conn.start();
    const ack = await until(() => hub.streams[0]?.received.find((m) => m.ack)?.ack, 'failed ack');
    assert.equal(ack.result, 'ACK_RESULT_FAILED');
    assert.match(ack.message, /digest/);
    assert.equal(received.length, 0);
    await conn.stop();
  });

  it('reconnects-when-the-hub-ends-the-stream-and-when-it-goes-silent', async () => {
    hub.streams = [];
    hub.onStream = (call) => {
      // First stream: ended by the hub. Later streams: welcome, then silence.
      if (hub.streams.length === 1) call.end();
      else
        call.write({
          welcome: {
            session: `s${hub.streams.length}`,
            heartbeatIntervalMs: 100,
            protocolVersion: 1,
          },
        });
    };
    const conn = connect([], 100);
    conn.start();
    await until(() => hub.streams.length >= 3, 'two reconnects', 10_000);
    // While connected the agent sends heartbeats at the hub's interval.
    assert.ok(hub.streams[1]?.received.some((m) => m.heartbeat));
    await conn.stop();
  });

  it('a-hub-that-welcomes-late-is-waited-for-not-dialled-again', async () => {
    hub.streams = [];
    // A hub admitting a storm: the welcome comes after several of the default intervals.
    hub.onStream = (call) => {
      const timer = setTimeout(
        () =>
          call.write({
            welcome: { session: 'late', heartbeatIntervalMs: 10_000, protocolVersion: 1 },
          }),
        600,
      );
      call.on('close', () => clearTimeout(timer));
    };
    const conn = connect([], 100);
    conn.start();
    await until(() => conn.machine.state === 'connected', 'welcomed', 10_000);
    assert.equal(hub.streams.length, 1, 'one stream: the agent waited for the welcome');
  });

  it('a-hub-that-never-welcomes-is-dialled-again-after-the-welcome-wait', async () => {
    hub.streams = [];
    hub.onStream = () => {};
    const conn = connect([], 10_000, { welcomeWaitMs: 300 });
    conn.start();
    await until(() => hub.streams.length >= 2, 'a second dial', 10_000);
  });

  it('sessions-dropped-right-after-their-welcome-come-back-with-a-growing-backoff', async () => {
    hub.streams = [];
    const opened: number[] = [];
    hub.onStream = (call) => {
      opened.push(Date.now());
      call.write({
        welcome: { session: 'brief', heartbeatIntervalMs: 10_000, protocolVersion: 1 },
      });
      setTimeout(() => call.end(), 5);
    };
    const conn = connect([], 10_000, { reconnectInitialMs: 20, reconnectMaxMs: 10_000 });
    conn.start();
    await until(() => opened.length >= 6, 'six sessions', 15_000);
    await conn.stop();
    // Delays of at least 10, 20, 40, 80 and 160 ms (each half its doubling base): a reset
    // at every welcome would have made them all 10-20 ms.
    const spanMs = (opened[5] as number) - (opened[0] as number);
    assert.ok(spanMs >= 310, `six brief sessions within ${spanMs} ms`);
  });

  it('a-watchdog-tick-late-after-the-agents-own-loop-was-held-does-not-drop-the-hub', async () => {
    hub.streams = [];
    const timers: NodeJS.Timeout[] = [];
    hub.onStream = (call) => {
      call.write({ welcome: { session: 'held', heartbeatIntervalMs: 400, protocolVersion: 1 } });
      const t = setInterval(() => call.write({ heartbeat: { sentAtMs: Date.now() } }), 20);
      timers.push(t);
      call.on('close', () => clearInterval(t));
    };
    try {
      const conn = connect([], 400);
      conn.start();
      await until(() => conn.machine.state === 'connected', 'welcomed');
      // Held for more than three of the hub's intervals: the hub's heartbeats wait in the socket.
      const heldUntil = Date.now() + 1_500;
      while (Date.now() < heldUntil) {
        /* held */
      }
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(conn.machine.state, 'connected');
      assert.equal(hub.streams.length, 1, 'the agent did not dial again');
    } finally {
      for (const t of timers) clearInterval(t);
    }
  });
});
