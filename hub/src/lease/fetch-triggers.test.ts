// Webhook fetch triggers between hub replicas: the message is checked before anything
// fetches, and over a real nats-server a webhook on one replica makes the others fetch.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { silentLogger, sleep } from '@flotilla/common';
import { requireEnv, startNats } from '@flotilla/test-env';
import type { TestNats } from '@flotilla/test-env';
import { NatsLink } from '../status/nats-link.js';
import {
  MAX_TRIGGER_BYTES,
  ReplicaFetchTriggers,
  TRIGGER_IDS_KEPT,
  decodeTrigger,
  encodeTrigger,
} from './fetch-triggers.js';

const skip = await requireEnv(['nats']);
const servers: TestNats[] = [];
const links: NatsLink[] = [];
after(async () => {
  await Promise.all(links.map((l) => l.stop()));
  await Promise.all(servers.map((s) => s.stop()));
});

const bytes = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

function replica(replicaId: string, fetched: string[], link?: NatsLink): ReplicaFetchTriggers {
  return new ReplicaFetchTriggers({
    connection: () => (link ? link.connection() : Promise.reject(new Error('no NATS here'))),
    hubId: 'fleet-hub',
    replicaId,
    target: (name) => (name === 'fleet' ? () => fetched.push(name) : undefined),
    logger: silentLogger(),
  });
}

test('fetch-trigger-messages-are-bounded-and-every-field-checked', () => {
  const t = { source: 'fleet', id: 'a1', from: 'hub-a' };
  assert.deepEqual(decodeTrigger(encodeTrigger(t)), t);
  assert.throws(
    () => decodeTrigger(new Uint8Array(MAX_TRIGGER_BYTES + 1)),
    /over the limit of 512/,
  );
  assert.throws(() => decodeTrigger(new TextEncoder().encode('{')), /not JSON/);
  assert.throws(() => decodeTrigger(bytes([1])), /"source" must be a non-empty string/);
  assert.throws(() => decodeTrigger(bytes({ ...t, id: 7 })), /"id" must be/);
  assert.throws(() => decodeTrigger(bytes({ ...t, from: '' })), /"from" must be/);
});

test('a-trigger-fetches-a-configured-source-once-and-never-its-own-or-an-unknown-one', () => {
  const fetched: string[] = [];
  const r = replica('hub-b', fetched);
  const msg = (source: string, id: string, from = 'hub-a'): Uint8Array =>
    encodeTrigger({ source, id, from });
  assert.equal(r.receive(msg('fleet', '1')), 'fetching');
  assert.equal(r.receive(msg('fleet', '1')), 'duplicate');
  assert.equal(r.receive(msg('fleet', '2', 'hub-b')), 'own');
  assert.equal(r.receive(msg('other', '3')), 'unknown-source');
  assert.equal(r.receive(new TextEncoder().encode('nope')), 'malformed');
  assert.deepEqual(fetched, ['fleet']);
  // Ids are remembered up to a bound: the oldest is forgotten first.
  for (let i = 0; i < TRIGGER_IDS_KEPT; i++) r.receive(msg('fleet', `n${i}`));
  assert.equal(r.receive(msg('fleet', '1')), 'fetching');
  assert.equal(r.receive(msg('fleet', `n${TRIGGER_IDS_KEPT - 1}`)), 'duplicate');
});

test('a-webhook-announced-by-one-replica-makes-the-others-fetch-over-nats', { skip }, async () => {
  const nats = await startNats({ jetstream: false });
  servers.push(nats);
  const fetched = { a: [] as string[], b: [] as string[], c: [] as string[] };
  const replicas = (['a', 'b', 'c'] as const).map((k) => {
    const link = new NatsLink({ url: nats.url, logger: silentLogger() });
    links.push(link);
    link.start();
    const r = replica(`hub-${k}`, fetched[k], link);
    r.start();
    return r;
  });
  // Subscriptions are made once each link is connected.
  await Promise.all(links.map((l) => l.connection()));
  await sleep(200);
  replicas[0]!.announce('fleet');
  const start = Date.now();
  while (fetched.b.length + fetched.c.length < 2 && Date.now() - start < 5_000) await sleep(10);
  assert.deepEqual(fetched, { a: [], b: ['fleet'], c: ['fleet'] });
  await Promise.all(replicas.map((r) => r.stop()));
});
