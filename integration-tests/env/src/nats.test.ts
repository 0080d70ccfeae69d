import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { requireEnv, startNats } from './index.js';
import type { TestNats } from './index.js';

const skip = await requireEnv(['nats']);
const servers: TestNats[] = [];
after(() => Promise.all(servers.map((s) => s.stop())));

test('jetstream-accepts-a-stream-publish-and-consume', { skip, timeout: 60_000 }, async () => {
  const nats = await startNats();
  servers.push(nats);
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'EVENTS', subjects: ['events.>'] });
    const js = jetstream(nc);
    const ack = await js.publish('events.hello', 'world', { msgID: 'm1' });
    assert.equal(ack.seq, 1);
    await jsm.consumers.add('EVENTS', { durable_name: 'reader' });
    const consumer = await js.consumers.get('EVENTS', 'reader');
    const msg = await consumer.next({ expires: 5_000 });
    assert.equal(msg?.string(), 'world');
    msg?.ack();
  } finally {
    await nc.close();
  }
});

test(
  'jetstream-keeps-messages-across-a-restart-on-the-same-port',
  { skip, timeout: 60_000 },
  async () => {
    const nats = await startNats();
    servers.push(nats);
    let nc = await connect({ servers: nats.url });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'KEPT', subjects: ['kept.>'] });
    await jetstream(nc).publish('kept.one', 'before-outage');
    await nc.close();

    await nats.stop();
    await assert.rejects(
      connect({ servers: nats.url, reconnect: false, timeout: 1_000 }),
      'server is down during the outage',
    );
    await nats.start();

    nc = await connect({ servers: nats.url });
    try {
      const info = await (await jetstreamManager(nc)).streams.info('KEPT');
      assert.equal(info.state.messages, 1);
    } finally {
      await nc.close();
    }
  },
);

test(
  'a-killed-server-keeps-its-store-and-a-removed-store-comes-back-empty',
  { skip, timeout: 60_000 },
  async () => {
    const nats = await startNats();
    servers.push(nats);
    let nc = await connect({ servers: nats.url });
    await (await jetstreamManager(nc)).streams.add({ name: 'CRASH', subjects: ['crash.>'] });
    await jetstream(nc).publish('crash.one', 'acked-before-the-kill');
    await nc.close();

    await nats.stop({ kill: true });
    await nats.start();
    nc = await connect({ servers: nats.url });
    try {
      const info = await (await jetstreamManager(nc)).streams.info('CRASH');
      assert.equal(info.state.messages, 1, 'an acked message survives SIGKILL');
    } finally {
      await nc.close();
    }

    await nats.stop({ removeStore: true });
    await nats.start();
    nc = await connect({ servers: nats.url });
    try {
      await assert.rejects((await jetstreamManager(nc)).streams.info('CRASH'), /stream not found/);
    } finally {
      await nc.close();
    }
  },
);

test('a-tls-server-is-reached-only-over-tls-with-its-ca', { skip, timeout: 60_000 }, async () => {
  const nats = await startNats({ tls: true });
  servers.push(nats);
  assert.match(nats.url, /^tls:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(nats.caPem && nats.caFile);
  // With the server's CA: TLS, and the server's certificate verified.
  const nc = await connect({ servers: nats.url, tls: { caFile: nats.caFile } });
  try {
    const js = jetstream(nc);
    await (await jetstreamManager(nc)).streams.add({ name: 'SECURE', subjects: ['secure.>'] });
    assert.equal((await js.publish('secure.one', 'over-tls')).seq, 1);
    const connz = (await (await fetch(`${nats.monitorUrl}/connz`)).json()) as {
      connections: { tls_version?: string }[];
    };
    assert.ok(
      connz.connections.length > 0 && connz.connections.every((c) => c.tls_version),
      'the server sees the connection as TLS',
    );
  } finally {
    await nc.close();
  }
  // Without its CA (system roots only) the certificate does not verify.
  await assert.rejects(
    connect({ servers: nats.url, tls: {}, reconnect: false, timeout: 3_000 }),
    (err: Error) => /certificate|self.signed|verify/i.test(`${err.message} ${String(err.cause)}`),
  );
  // A client that will not speak TLS is refused.
  await assert.rejects(connect({ servers: nats.url, tls: null, reconnect: false, timeout: 3_000 }));
});
