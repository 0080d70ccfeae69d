// HubConnection with several hub addresses (replicas of one hub), against real in-process
// gRPC servers speaking our AgentStream protocol: an unreachable hub is skipped at once,
// and a stream lost with its hub is taken up by the next one.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { silentLogger } from '@flotilla/common';
import { ScriptedHub, until, within } from '../testing/scripted-hub.js';
import type { ServerCall } from '../testing/scripted-hub.js';
import { HubConnection, hubAddresses } from './hub-connection.js';
import type { HubHandler } from './hub-connection.js';

function welcome(session: string): (call: ServerCall) => void {
  return (call) =>
    call.write({ welcome: { session, heartbeatIntervalMs: 10_000, protocolVersion: 1 } });
}

/** A free loopback port with nothing listening: a hub that is down. */
async function deadAddress(): Promise<string> {
  const h = new ScriptedHub();
  await h.start();
  h.server.forceShutdown();
  return `127.0.0.1:${h.port}`;
}

function connect(address: string, reconnectInitialMs: number): HubConnection {
  const handler: HubHandler = {
    appliedMark: () => ({ digest: '', revision: '' }),
    onDesired: () => {},
    onUpToDate: () => {},
  };
  return new HubConnection(
    {
      cluster: 'east',
      address,
      agentVersion: '0.1.0',
      insecure: true,
      keepaliveTimeMs: 20_000,
      keepaliveTimeoutMs: 10_000,
      // Long: a failover that waited for the backoff would miss the tests' deadlines.
      reconnectInitialMs,
      reconnectMaxMs: reconnectInitialMs,
      heartbeatMs: 10_000,
      logger: silentLogger(),
    },
    handler,
  );
}

describe('hub failover', () => {
  const hubs: ScriptedHub[] = [];
  const conns: HubConnection[] = [];
  after(async () => {
    try {
      await within(Promise.all(conns.map((c) => c.stop())), 'stopping connections');
    } finally {
      for (const h of hubs) h.server.forceShutdown();
    }
  });

  it('hub-addresses-are-a-comma-separated-list', () => {
    assert.deepEqual(hubAddresses('a:1, b:2,,c:3 '), ['a:1', 'b:2', 'c:3']);
    assert.deepEqual(hubAddresses('hub.example.com:443'), ['hub.example.com:443']);
  });

  it('an-unreachable-hub-is-skipped-at-once-for-the-next', async () => {
    const live = new ScriptedHub();
    hubs.push(live);
    await live.start();
    live.onStream = welcome('s-live');
    const dead = await deadAddress();
    const conn = connect(`${dead},127.0.0.1:${live.port}`, 30_000);
    conns.push(conn);
    const t0 = Date.now();
    conn.start();
    await until(() => conn.machine.state === 'connected', 'connected to the live hub', 5_000);
    assert.equal(conn.address, `127.0.0.1:${live.port}`);
    assert.equal(live.streams.length, 1);
    assert.ok(Date.now() - t0 < 5_000, `failed over in ${Date.now() - t0} ms`);
  });

  it('a-stream-lost-with-its-hub-goes-to-the-next-hub', async () => {
    const a = new ScriptedHub();
    const b = new ScriptedHub();
    hubs.push(a, b);
    await Promise.all([a.start(), b.start()]);
    a.onStream = welcome('s-a');
    b.onStream = welcome('s-b');
    const conn = connect(`127.0.0.1:${a.port},127.0.0.1:${b.port}`, 100);
    conns.push(conn);
    conn.start();
    await until(() => conn.machine.state === 'connected', 'connected to hub a');
    assert.equal(a.streams.length, 1);
    assert.equal(b.streams.length, 0);
    // Hub a dies (its streams cut, its port closed): the agent goes on with hub b.
    a.server.forceShutdown();
    await until(() => b.streams.length === 1, 'a stream to hub b');
    await until(() => conn.machine.state === 'connected', 'connected to hub b');
    assert.equal(conn.address, `127.0.0.1:${b.port}`);
  });

  it('when-every-hub-is-down-it-backs-off-between-rounds', async () => {
    const conn = connect(`${await deadAddress()},${await deadAddress()}`, 60_000);
    conns.push(conn);
    conn.start();
    // Both tried once (one failover), then the backoff holds it.
    await until(() => conn.machine.state === 'backoff', 'backoff');
    await new Promise((r) => setTimeout(r, 1_500));
    assert.equal(conn.machine.state, 'backoff');
  });
});
