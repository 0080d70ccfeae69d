// One cluster's NATS credentials cannot hurt the others (issue 14), against a real
// nats-server in operator mode and the real hub app: an agent credential publishing as
// fast as it can, and one sending a message over its payload limit, is limited by NATS
// and by the hub; the other cluster's events still arrive and are folded; the hub names
// the offending cluster in /metrics and in its status.
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import type { Socket } from 'node:net';
import test from 'node:test';
import { jetstreamManager } from '@nats-io/jetstream';
import { fromSeed } from '@nats-io/nkeys';
import { jwtAuthenticator } from '@nats-io/transport-node';
import { natsSink } from '@flotilla/agent';
import { EVENTS_STREAM, EVENT_LIMITS, TooLargeError, silentLogger } from '@flotilla/common';
import { AGENT_EVENT_KINDS } from '@flotilla/hub';
import type { HubApp } from '@flotilla/hub';
import { requireEnv, waitFor } from '@flotilla/test-env';
import type { EdgeWorld } from './edge-world.js';
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
import { desired } from './one-commit-fleet.js';

const skip = await requireEnv(['nats']);

type ClusterView = { name: string; appliedDigest: string; degraded?: string };
const cluster = (hub: HubApp, name: string) => api<ClusterView>(hub, `/api/v1/clusters/${name}`);
const metrics = async (hub: HubApp): Promise<string> =>
  (await fetch(`http://127.0.0.1:${hub.httpPort}/metrics`)).text();
const cutCount = (text: string, name: string, what: string): number =>
  Number(
    new RegExp(`^flotilla_input_cut_total\\{cluster="${name}",what="${what}"\\} (\\d+)$`, 'm').exec(
      text,
    )?.[1] ?? 0,
  );

// The good cluster's next applied event is folded and acked: its status moved on.
async function goodStillFolded(w: EdgeWorld, hub: HubApp, digest: string): Promise<void> {
  const good = await w.agent(GOOD);
  const ack = await publishAs(good, 'applied', goodApplied(digest));
  if (ack instanceof Error) throw ack;
  await untilAcked(w, ack.seq, "the other cluster's applied event folded and acked");
  assert.equal((await cluster(hub, GOOD)).appliedDigest, digest);
  assert.equal((await cluster(hub, GOOD)).degraded ?? '', '', 'the other cluster is not marked');
}

test(
  'a-cluster-publishing-as-fast-as-it-can-is-limited-and-reported-while-others-are-folded',
  { skip, timeout: 120_000 },
  async () => {
    const w = await edgeWorld();
    let hub: HubApp | undefined;
    try {
      hub = w.newHub();
      await hub.start();
      await untilServing(hub);
      const rogue = await w.agent(ROGUE);
      // As fast as the client goes: core publishes, no waiting for JetStream's acks, on
      // every subject it may use and on made-up ones (which would each get their own budget).
      const enc = new TextEncoder();
      const flood = 30_000;
      for (let i = 0; i < flood; i++) {
        const kind = AGENT_EVENT_KINDS[i % AGENT_EVENT_KINDS.length] as string;
        rogue.publish(
          `flotilla.events.${ROGUE}.${kind}`,
          enc.encode(JSON.stringify(driftOf(ROGUE, `o${i}`, ['/data/x']))),
        );
        if (i % 1_000 === 0)
          rogue.publish(`flotilla.events.${ROGUE}.made-up-${i}`, enc.encode('{}'));
      }
      await rogue.flush();
      await goodStillFolded(w, hub, 'sha256:after-the-flood');

      // NATS: the flood kept at most its per-subject budget, on its permitted subject only.
      const jsm = await jetstreamManager(w.hubNc);
      const info = await jsm.streams.info(EVENTS_STREAM, {
        subjects_filter: `flotilla.events.${ROGUE}.>`,
      });
      const subjects = info.state.subjects ?? {};
      assert.deepEqual(
        Object.keys(subjects).sort(),
        AGENT_EVENT_KINDS.map((k) => `flotilla.events.${ROGUE}.${k}`).sort(),
        'no made-up subject was accepted',
      );
      for (const [subject, n] of Object.entries(subjects))
        assert.ok(n <= 2_000, `the stream keeps ${n} of the flood on ${subject}`);
      // The hub: past the burst, the flood was skipped unread, counted, and the cluster named.
      const limited = await waitFor(
        async () => {
          const n = cutCount(await metrics(hub as HubApp), ROGUE, 'events.rate');
          return n > 0 ? n : undefined;
        },
        { what: 'the rogue cluster counted as over its event rate', timeoutMs: 30_000 },
      );
      assert.ok(limited <= flood - EVENT_LIMITS.eventBurst, `${limited} events skipped`);
      assert.match(
        (await cluster(hub, ROGUE)).degraded ?? '',
        /^events over 100\/s \(burst 5000\) skipped, not folded$/,
      );
      assert.equal(cutCount(await metrics(hub), GOOD, 'events.rate'), 0);
    } finally {
      await hub?.stop(1_000);
      await w.stop();
    }
  },
);

/** A NATS client written by hand, as an attacker would: it skips the client library's size check. */
async function rawAgent(
  w: EdgeWorld,
  clusterName: string,
): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  const { jwt, seed } = w.agentCredentials(clusterName);
  const socket = tcpConnect({ host: '127.0.0.1', port: w.nats.port });
  let text = '';
  socket.on('data', (b: Buffer) => (text += b.toString('utf8')));
  // The server closing on us is the point of these tests; a reset must not become an
  // unhandled 'error' event.
  socket.on('error', () => {});
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  const info = await waitFor(() => /^INFO (.*)\r\n/.exec(text)?.[1], { what: 'INFO' });
  const nonce = (JSON.parse(info) as { nonce: string }).nonce;
  const sig = Buffer.from(fromSeed(seed).sign(new TextEncoder().encode(nonce))).toString(
    'base64url',
  );
  const connect = { jwt, sig, verbose: false, pedantic: false, protocol: 1, headers: true };
  socket.write(`CONNECT ${JSON.stringify(connect)}\r\nPING\r\n`);
  await waitFor(() => text.includes('PONG'), { what: 'the raw client connected' });
  return { socket, received: () => text, closed };
}

test(
  'a-message-over-the-payload-limit-closes-the-connection-and-the-hub-names-the-cluster',
  { skip, timeout: 120_000 },
  async () => {
    const w = await edgeWorld();
    let hub: HubApp | undefined;
    try {
      hub = w.newHub();
      await hub.start();
      await untilServing(hub);
      const jsm = await jetstreamManager(w.hubNc);
      const before = (await jsm.streams.info(EVENTS_STREAM)).state.messages;

      // The client library refuses it before sending; the agent's sink says it never fits.
      const sink = natsSink({
        servers: w.nats.url,
        name: 'flotilla-agent-rogue',
        logger: silentLogger(),
        authenticator: (() => {
          const c = w.agentCredentials(ROGUE);
          return jwtAuthenticator(c.jwt, c.seed);
        })(),
        inboxPrefix: `_INBOX_${ROGUE}`,
      });
      try {
        await waitFor(
          () =>
            sink.publish(`flotilla.events.${ROGUE}.applied`, new Uint8Array(8), 'probe').then(
              () => true,
              () => false,
            ),
          { what: 'the sink connected' },
        );
        await assert.rejects(
          sink.publish(`flotilla.events.${ROGUE}.applied`, new Uint8Array(70_000), 'big'),
          (err) => err instanceof TooLargeError,
        );
      } finally {
        await sink.close();
      }

      // Sent anyway, by hand: nats-server closes the connection.
      const raw = await rawAgent(w, ROGUE);
      // nats-server judges the size announced in the PUB line and closes at once. Only the
      // line is sent: a body still in flight when it closes turns its close into a TCP reset,
      // which can discard the -ERR before this client reads it.
      const size = EVENT_LIMITS.eventBytes + 1_000;
      raw.socket.write(`PUB flotilla.events.${ROGUE}.applied ${size}\r\n`);
      await raw.closed;
      assert.match(raw.received(), /-ERR 'Maximum Payload Violation'/);

      await waitFor(
        async () => cutCount(await metrics(hub as HubApp), ROGUE, 'nats.payload') === 1,
        { what: 'the hub counting the payload violation of the rogue cluster', timeoutMs: 20_000 },
      );
      assert.equal(
        (await cluster(hub, ROGUE)).degraded,
        `NATS closed the agent's connection: Maximum Message Payload Exceeded (a message over ${EVENT_LIMITS.eventBytes} bytes)`,
      );
      await goodStillFolded(w, hub, desired(GOOD).digest);
      // Nothing of the oversized message reached the stream (the probe did, and the good event).
      const after = (await jsm.streams.info(EVENTS_STREAM)).state.messages;
      assert.equal(after - before, 2);
    } finally {
      await hub?.stop(1_000);
      await w.stop();
    }
  },
);
