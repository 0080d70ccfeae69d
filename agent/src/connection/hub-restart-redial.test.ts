// A hub that stops on purpose (a restart) ends every agent stream with UNAVAILABLE and
// the RECONNECT_TRAILER: the agent dials again at the pace it asks for instead of backing
// off, for a window; a stream that ends without it is backed off as before. Against a
// real in-process gRPC server; the delays are read from the agent's own log line, not
// timed.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, afterEach, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { createLogger } from '@flotilla/common';
import { RECONNECT_TRAILER } from '@flotilla/proto';
import { ScriptedHub, until, within } from '../testing/scripted-hub.js';
import type { ServerCall } from '../testing/scripted-hub.js';
import { HubConnection, REDIAL_BOUNDS, redialHint } from './hub-connection.js';

/** Backoff of these tests: any delay it gives is at least 15 s (30 s, half jittered). */
const LONG_BACKOFF_MS = 30_000;

function endUnavailable(call: ServerCall, redialMs?: string): void {
  const metadata = new grpc.Metadata();
  if (redialMs !== undefined) metadata.set(RECONNECT_TRAILER, redialMs);
  call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'hub shutting down', metadata });
}

function welcome(call: ServerCall, session: string): void {
  call.write({ welcome: { session, heartbeatIntervalMs: 10_000, protocolVersion: 1 } });
}

describe('hub restart redial', () => {
  const hub = new ScriptedHub();
  const conns: HubConnection[] = [];
  before(() => hub.start());
  afterEach(() =>
    within(Promise.all(conns.splice(0).map((c) => c.stop())), 'stopping connections'),
  );
  after(() => hub.server.forceShutdown());

  /** A connection whose "retrying" log lines (their delayMs) are collected. */
  function connect(redialWindowMs?: number): { conn: HubConnection; delays: number[] } {
    const delays: number[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) {
          const l = JSON.parse(line) as { msg: string; delayMs?: number };
          if (l.msg === 'hub connection failed; retrying' && l.delayMs !== undefined)
            delays.push(l.delayMs);
        }
        done();
      },
    });
    const conn = new HubConnection(
      {
        cluster: 'east',
        address: `127.0.0.1:${hub.port}`,
        agentVersion: '0.1.0',
        insecure: true,
        keepaliveTimeMs: 20_000,
        keepaliveTimeoutMs: 10_000,
        reconnectInitialMs: LONG_BACKOFF_MS,
        reconnectMaxMs: LONG_BACKOFF_MS,
        heartbeatMs: 10_000,
        logger: createLogger({ name: 'agent', destination }),
        ...(redialWindowMs !== undefined ? { redialWindowMs } : {}),
      },
      {
        appliedMark: () => ({ digest: '', revision: '' }),
        onDesired: () => {},
        onUpToDate: () => {},
      },
    );
    conns.push(conn);
    return { conn, delays };
  }

  it('a-hub-stopping-on-purpose-is-redialled-at-its-pace-not-backed-off', async () => {
    hub.streams = [];
    // Welcomed, then the hub stops; the next dial is refused by the stopping hub (again
    // asking for a redial); the one after that is welcomed by the restarted hub.
    hub.onStream = (call) => {
      const n = hub.streams.length;
      if (n === 1) {
        welcome(call, 's1');
        setTimeout(() => endUnavailable(call, '100'), 20);
      } else if (n === 2) endUnavailable(call, '100');
      else welcome(call, `s${n}`);
    };
    const { conn, delays } = connect();
    conn.start();
    // The backoff would wait at least 15 s before the second dial.
    await until(
      () => hub.streams.length >= 3 && conn.machine.state === 'connected',
      'back',
      10_000,
    );
    assert.equal(delays.length, 2);
    for (const d of delays) assert.ok(d >= 50 && d <= 100, `delay ${d} ms, asked 100`);
  });

  it('a-stream-ended-without-the-request-is-backed-off', async () => {
    hub.streams = [];
    hub.onStream = (call) => {
      welcome(call, 's1');
      setTimeout(() => endUnavailable(call), 20);
    };
    const { conn, delays } = connect();
    conn.start();
    await until(() => delays.length === 1, 'the first retry decided');
    assert.ok((delays[0] as number) >= LONG_BACKOFF_MS / 2, `delay ${delays[0]} ms`);
    assert.equal(hub.streams.length, 1);
  });

  it('after-the-window-the-backoff-applies-again', async () => {
    hub.streams = [];
    // The first end asks for a redial; the second (the window of 0 ms has passed) does not.
    hub.onStream = (call) => {
      welcome(call, `s${hub.streams.length}`);
      const ask = hub.streams.length === 1 ? '100' : undefined;
      setTimeout(() => endUnavailable(call, ask), 20);
    };
    const { conn, delays } = connect(0);
    conn.start();
    await until(() => delays.length === 2, 'two retries decided');
    assert.ok((delays[0] as number) <= 100, `first delay ${delays[0]} ms`);
    assert.ok((delays[1] as number) >= LONG_BACKOFF_MS / 2, `second delay ${delays[1]} ms`);
  });

  it('the-asked-pace-is-bounded-and-read-only-from-digits', () => {
    const md = (v?: string): grpc.Metadata => {
      const m = new grpc.Metadata();
      if (v !== undefined) m.set(RECONNECT_TRAILER, v);
      return m;
    };
    assert.equal(redialHint(md('1000')), 1000);
    assert.equal(redialHint(md('5')), REDIAL_BOUNDS.minMs);
    assert.equal(redialHint(md('999999999')), REDIAL_BOUNDS.maxMs);
    assert.equal(redialHint(md('0')), undefined);
    assert.equal(redialHint(md('1e3')), undefined);
    assert.equal(redialHint(md('-5')), undefined);
    assert.equal(redialHint(md()), undefined);
    assert.equal(redialHint(undefined), undefined);
  });
});
