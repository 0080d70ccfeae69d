import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import test from 'node:test';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import type { AgentStreamClient, HubMessage__Output } from '@flotilla/proto';
import { loadFlotillaProto } from '@flotilla/proto';
import type { FixtureMessage, HoldRequest } from './held-loop-server.fixture.js';

/**
 * A TCP proxy that delays the client's bytes by delayMs on their way to the server, as a
 * network (or a busy client) does: the answer to the server's keepalive ping is not
 * already there when the server's loop turns right after sending it.
 */
async function delayingProxy(targetPort: number, delayMs: number): Promise<Server> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    client.on('data', (b) => setTimeout(() => upstream.write(b), delayMs));
    upstream.on('data', (b) => client.write(b));
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('close', close).on('error', close);
    upstream.on('close', close).on('error', close);
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

test('keepalive-survives-a-held-event-loop', { timeout: 120_000 }, async () => {
  const fixture = fileURLToPath(new URL('./held-loop-server.fixture.js', import.meta.url));
  const child = fork(fixture, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const next = (t: FixtureMessage['t']): Promise<FixtureMessage> =>
    new Promise((resolve, reject) => {
      const onMessage = (m: FixtureMessage): void => {
        if (m.t !== t) return;
        child.off('message', onMessage);
        resolve(m);
      };
      child.on('message', onMessage);
      child.once('exit', (code) => reject(new Error(`fixture exited (${code})`)));
    });
  const listening = await next('listening');
  assert.equal(listening.t, 'listening');
  const proxy = await delayingProxy(listening.port, 20);
  const client = new (loadFlotillaProto().AgentStream)(
    `127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    credentials.createInsecure(),
  ) as unknown as AgentStreamClient;
  const call = client.Connect();
  const ended = new Promise<string>((resolve) => {
    call.on('error', (e: Error) => resolve(e.message));
    call.on('end', () => resolve('ended'));
  });
  const roundTrip = (): Promise<string> =>
    Promise.race([
      new Promise<string>((resolve) =>
        call.once('data', (m: HubMessage__Output) => resolve(m.kind ?? 'none')),
      ),
      ended,
    ]);
  try {
    let answer = roundTrip();
    call.write({ heartbeat: { sentAtMs: Date.now() } });
    assert.equal(await answer, 'heartbeat');
    // The server pings 20 s after the connection opened. Held 3 × 12 s, its loop turns at
    // 12, 24 and 36 s: the ping goes out at 24 s, its answer waits unread, and at 36 s the
    // ping's timeout runs before the socket is read. A timeout shorter than the hold (10 s)
    // dropped the connection whose peer had answered.
    const held = next('held');
    child.send({ holdMs: 12_000, times: 3 } satisfies HoldRequest);
    await held;
    answer = roundTrip();
    call.write({ heartbeat: { sentAtMs: Date.now() } });
    assert.equal(await answer, 'heartbeat', 'the stream survived the held loop');
  } finally {
    call.cancel();
    client.close();
    proxy.close();
    child.disconnect();
    if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
  }
});
