// NATS identity with a real nats-server in operator mode: the user JWT the hub issues to
// an agent lets it publish only under flotilla.events.<its cluster>.>; the hub's own
// credentials are separate and may do everything in the account.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, credsAuthenticator, jwtAuthenticator } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { createUser } from '@nats-io/nkeys';
import {
  agentInboxPrefix,
  agentUserJwt,
  createNatsAuthSetup,
  ensureEventsStream,
} from '@flotilla/hub';
import { requireEnv, startNats } from '@flotilla/test-env';
import type { TestNats } from '@flotilla/test-env';

const skip = await requireEnv(['nats']);
let nats: TestNats | undefined;
let hub: NatsConnection | undefined;
const setup = createNatsAuthSetup();
const enc = new TextEncoder();

async function agentConnection(cluster: string): Promise<NatsConnection> {
  const user = createUser();
  const jwt = agentUserJwt(setup.accountSeed, cluster, user.getPublicKey());
  return connect({
    servers: nats!.url,
    authenticator: jwtAuthenticator(jwt, user.getSeed()),
    inboxPrefix: agentInboxPrefix(cluster),
    name: `agent-${cluster}`,
  });
}

before(async () => {
  if (skip) return;
  nats = await startNats({ config: setup.serverConfig });
  hub = await connect({
    servers: nats.url,
    authenticator: credsAuthenticator(enc.encode(setup.hubCreds)),
  });
  await jetstreamManager(hub).then((m) =>
    m.streams.add({ name: 'FLOTILLA_EVENTS', subjects: ['flotilla.events.>'] }),
  );
});

after(async () => {
  await hub?.close();
  await nats?.stop();
});

test('an-agent-publishes-events-of-its-own-cluster', { skip }, async () => {
  const nc = await agentConnection('alpha');
  try {
    const ack = await jetstream(nc).publish('flotilla.events.alpha.applied', enc.encode('{}'), {
      msgID: 'a-1',
      timeout: 5_000,
    });
    assert.equal(ack.stream, 'FLOTILLA_EVENTS');
  } finally {
    await nc.close();
  }
});

test('an-agent-with-alpha-credentials-cannot-publish-as-beta', { skip }, async () => {
  const nc = await agentConnection('alpha');
  try {
    await assert.rejects(
      jetstream(nc).publish('flotilla.events.beta.applied', enc.encode('{}'), {
        msgID: 'b-1',
        timeout: 3_000,
      }),
      (err: Error) =>
        /permission/i.test(`${err.message} ${String((err as { cause?: unknown }).cause ?? '')}`),
    );
    const info = await jetstreamManager(hub!).then((m) => m.streams.info('FLOTILLA_EVENTS'));
    assert.equal(
      info.state.messages,
      1,
      'only the message alpha published for itself is in the stream',
    );
  } finally {
    await nc.close();
  }
});

test('an-agent-without-credentials-cannot-connect', { skip }, async () => {
  await assert.rejects(connect({ servers: nats!.url, reconnect: false }), /authoriz|authent/i);
});

test('only-the-hub-publishes-session-events', { skip }, async () => {
  // The stream made above is an older hub's: the hub's credentials add the session subjects.
  await ensureEventsStream(hub!);
  const nc = await agentConnection('alpha');
  try {
    await assert.rejects(
      jetstream(nc).publish('flotilla.hub.sessions.alpha', enc.encode('{}'), {
        msgID: 's-1',
        timeout: 3_000,
      }),
      (err: Error) =>
        /permission/i.test(`${err.message} ${String((err as { cause?: unknown }).cause ?? '')}`),
      'an agent cannot record a session, not even for its own cluster',
    );
    const ack = await jetstream(hub!).publish('flotilla.hub.sessions.alpha', enc.encode('{}'), {
      msgID: 's-2',
      timeout: 5_000,
    });
    assert.equal(ack.stream, 'FLOTILLA_EVENTS');
  } finally {
    await nc.close();
  }
});
