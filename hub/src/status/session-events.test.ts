// Session events without NATS: the publisher (against a fake DurablePublish), folding
// into the status model and the history, and the subject rule that stops forgeries.
import assert from 'node:assert/strict';
import test from 'node:test';
import type { FlotillaEvent, Logger } from '@flotilla/common';
import {
  ValidationError,
  createEvent,
  createLogger,
  parseEvent,
  silentLogger,
} from '@flotilla/common';
import type { Hello__Output } from '@flotilla/proto';
import { HistoryLog } from '../history/history-log.js';
import { nullObserver } from '../stream/types.js';
import type { SessionObserver } from '../stream/types.js';
import { FleetStatus } from './fleet-status.js';
import { checkEventSubject, sessionEvent, sessionSubject } from './session-events.js';
import type { SessionEventData } from './session-events.js';
import { SessionEventPublisher } from './session-publisher.js';
import type { DurablePublish, SessionEventOutcome } from './session-publisher.js';

const T0 = Date.parse('2026-11-26T12:00:00Z');

function hello(cluster: string, agentVersion = '1.4.0'): Hello__Output {
  return {
    cluster,
    agentVersion,
    capabilities: null,
    appliedDigest: 'sha256:d1',
    appliedRevision: 'r1',
    sentAtMs: 0,
    protocolVersion: 1,
  };
}

function data(session: string, reason = ''): SessionEventData {
  return {
    session,
    agentVersion: '1.4.0',
    reason,
    hub: 'hub-a',
    appliedRevision: 'r1',
    appliedDigest: 'sha256:d1',
  };
}

/** A DurablePublish that stores while up and waits (like a NATS outage) while down. */
function fakeNats() {
  const stored: { subject: string; event: FlotillaEvent<SessionEventData> }[] = [];
  let up = true;
  let wake: (() => void) | undefined;
  const publish: DurablePublish = async (subject, payload, _msgID, signal) => {
    while (!up) {
      if (signal.aborted) throw new Error('stopped');
      await new Promise<void>((r) => {
        wake = r;
        signal.addEventListener('abort', () => r(), { once: true });
      });
    }
    stored.push({ subject, event: JSON.parse(payload) as FlotillaEvent<SessionEventData> });
  };
  return {
    stored,
    publish,
    down: () => (up = false),
    up: () => {
      up = true;
      wake?.();
    },
  };
}

function publisher(nats: ReturnType<typeof fakeNats>, maxBuffered = 100) {
  const outcomes: SessionEventOutcome[] = [];
  let now = T0;
  const p = new SessionEventPublisher({
    publish: nats.publish,
    hubId: 'hub-a',
    logger: silentLogger(),
    maxBuffered,
    onOutcome: (o) => outcomes.push(o),
    now: () => (now += 1_000),
  });
  return { p, outcomes };
}

test('session-start-and-end-are-published-after-the-inner-observer', async () => {
  const nats = fakeNats();
  const { p, outcomes } = publisher(nats);
  const calls: string[] = [];
  const inner: SessionObserver = {
    ...nullObserver,
    connected: (c, s) => calls.push(`connected ${c} ${s}`),
    disconnected: (c, s, r) => calls.push(`disconnected ${c} ${s} ${r}`),
  };
  const observer = p.observe(inner);
  observer.connected('edge-1', 's1', hello('edge-1'));
  observer.disconnected('edge-1', 's1', 'agent ended the stream');
  await p.idle();
  assert.deepEqual(calls, ['connected edge-1 s1', 'disconnected edge-1 s1 agent ended the stream']);
  assert.deepEqual(
    nats.stored.map((m) => [m.subject, m.event.type, m.event.id, m.event.data.reason]),
    [
      ['flotilla.hub.sessions.edge-1', 'dev.flotilla.session.connected', 's1.connected', ''],
      [
        'flotilla.hub.sessions.edge-1',
        'dev.flotilla.session.disconnected',
        's1.disconnected',
        'agent ended the stream',
      ],
    ],
  );
  const ended = nats.stored[1]?.event;
  assert.equal(ended?.data.agentVersion, '1.4.0', 'the end names the agent version of its start');
  assert.equal(ended?.source, 'flotilla/hub/hub-a');
  assert.equal(ended?.time, new Date(T0 + 2_000).toISOString());
  assert.deepEqual(outcomes, ['published', 'published']);
  assert.doesNotThrow(() => parseEvent(JSON.stringify(ended)), 'a well-formed event');
});

test('nats-down-buffers-boundedly-drops-the-oldest-counted-then-publishes-in-order', async () => {
  const nats = fakeNats();
  nats.down();
  const { p, outcomes } = publisher(nats, 3);
  const observer = p.observe(nullObserver);
  // Six events while NATS is down: the first is in flight, three more fit, two go.
  for (const s of ['s1', 's2', 's3']) {
    observer.connected('edge-1', s, hello('edge-1'));
    observer.disconnected('edge-1', s, 'stream closed');
  }
  assert.equal(p.buffered, 3);
  assert.deepEqual(p.counts, { published: 0, dropped: 3 });
  nats.up();
  await p.idle();
  // The one in flight is never dropped; of the others, the newest are kept, in order.
  assert.deepEqual(
    nats.stored.map((m) => m.event.id),
    ['s1.connected', 's3.connected', 's3.disconnected'],
  );
  assert.deepEqual(p.counts, { published: 3, dropped: 3 });
  assert.deepEqual(outcomes, [...Array(3).fill('dropped'), ...Array(3).fill('published')]);
});

test('stop-with-nats-down-drops-and-counts-what-is-left-and-never-blocks', async () => {
  const nats = fakeNats();
  nats.down();
  const { p } = publisher(nats);
  const observer = p.observe(nullObserver);
  observer.connected('edge-1', 's1', hello('edge-1'));
  observer.disconnected('edge-1', 's1', 'hub shutting down');
  await p.stop(50);
  // The one in flight ends with the abort, as a publish waiting for NATS does.
  for (let i = 0; i < 100 && p.counts.dropped < 2; i++) await new Promise((r) => setImmediate(r));
  assert.deepEqual(p.counts, { published: 0, dropped: 2 });
  observer.connected('edge-1', 's2', hello('edge-1'));
  assert.deepEqual(p.counts, { published: 0, dropped: 3 }, 'after stop, nothing is buffered');
});

test('a-failing-publish-is-retried-and-never-reaches-the-stream', async () => {
  let fails = 2;
  const stored: string[] = [];
  const p = new SessionEventPublisher({
    publish: async (_s, _p, msgID) => {
      if (fails-- > 0) throw new Error('timeout');
      stored.push(msgID);
    },
    hubId: 'hub-a',
    logger: silentLogger(),
  });
  const observer = p.observe(nullObserver);
  assert.doesNotThrow(() => observer.connected('edge-1', 's1', hello('edge-1')));
  await p.idle();
  assert.deepEqual(stored, ['s1.connected']);
  await p.stop(0);
});

/** A logger that keeps its lines, parsed. */
function keptLogger(): { logger: Logger; lines: { msg: string; err?: string }[] } {
  const lines: { msg: string; err?: string }[] = [];
  const logger = createLogger({
    name: 'test',
    destination: {
      write: (l: string) => lines.push(JSON.parse(l) as { msg: string }) > 0,
    } as unknown as NodeJS.WritableStream,
  });
  return { logger, lines };
}

test('session-events-are-published-many-at-once-not-one-round-trip-each', async () => {
  let inFlight = 0;
  let most = 0;
  const release: (() => void)[] = [];
  const p = new SessionEventPublisher({
    publish: async () => {
      most = Math.max(most, ++inFlight);
      await new Promise<void>((r) => release.push(r));
      inFlight--;
    },
    hubId: 'hub-a',
    logger: silentLogger(),
    window: 8,
  });
  const observer = p.observe(nullObserver);
  for (let i = 0; i < 20; i++) observer.connected(`edge-${i}`, `s${i}`, hello(`edge-${i}`));
  for (let turn = 0; p.buffered > 0 && turn < 1_000; turn++) {
    release.splice(0).forEach((r) => r());
    await new Promise((r) => setImmediate(r));
  }
  await p.idle();
  assert.equal(p.counts.published, 20);
  assert.equal(most, 8, 'the window is used: 8 publishes in flight at once');
});

test('a-full-buffer-while-publishing-is-slow-says-it-is-behind-not-that-nats-is-unreachable', async () => {
  const release: (() => void)[] = [];
  const { logger, lines } = keptLogger();
  const p = new SessionEventPublisher({
    publish: () => new Promise<void>((r) => release.push(r)),
    hubId: 'hub-a',
    logger,
    maxBuffered: 3,
    window: 1,
  });
  const observer = p.observe(nullObserver);
  for (let i = 0; i < 6; i++) observer.connected(`edge-${i}`, `s${i}`, hello(`edge-${i}`));
  assert.equal(p.counts.dropped, 3);
  const dropped = lines.find((l) => l.msg.startsWith('session event dropped'));
  assert.match(dropped?.msg ?? '', /publishing to JetStream is behind/);
  assert.doesNotMatch(dropped?.msg ?? '', /unreachable/);
  for (let turn = 0; p.buffered > 0 && turn < 100; turn++) {
    release.splice(0).forEach((r) => r());
    await new Promise((r) => setImmediate(r));
  }
  await p.stop(0);
});

test('a-full-buffer-while-publishes-fail-says-nats-is-unreachable-and-why', async () => {
  const { logger, lines } = keptLogger();
  const p = new SessionEventPublisher({
    publish: () => Promise.reject(new Error('503 no responders')),
    hubId: 'hub-a',
    logger,
    maxBuffered: 2,
  });
  const observer = p.observe(nullObserver);
  observer.connected('edge-1', 's1', hello('edge-1'));
  // The first publish fails (the pump is then in its backoff); more sessions fill the buffer.
  for (let i = 0; i < 20 && !lines.some((l) => l.msg.startsWith('publishing')); i++)
    await new Promise((r) => setImmediate(r));
  for (let i = 2; i < 5; i++) observer.connected(`edge-${i}`, `s${i}`, hello(`edge-${i}`));
  const dropped = lines.find((l) => l.msg.startsWith('session event dropped'));
  assert.match(dropped?.msg ?? '', /NATS is unreachable/);
  assert.equal(dropped?.err, '503 no responders');
  await p.stop(0);
});

function status(): FleetStatus {
  const s = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger(), now: () => T0 });
  s.setFleet([{ name: 'edge-1', labels: {}, desired: { revision: 'r1', digest: 'sha256:d1' } }]);
  return s;
}

test('session-events-fold-idempotently-and-never-flip-a-live-session', () => {
  const connected = sessionEvent('edge-1', 'connected', data('s1'), new Date(T0 - 60_000));
  const ended = sessionEvent(
    'edge-1',
    'disconnected',
    data('s1', 'stream error: reset'),
    new Date(T0 - 30_000),
  );
  const forward = status();
  assert.equal(forward.foldEvent('connected', connected), 'folded');
  assert.equal(forward.foldEvent('disconnected', ended), 'folded');
  assert.equal(forward.foldEvent('connected', connected), 'stale', 'a duplicate changes nothing');
  const backward = status();
  backward.foldEvent('disconnected', ended);
  backward.foldEvent('connected', connected);
  assert.deepEqual(backward.get('edge-1'), forward.get('edge-1'), 'any order, same state');
  const c = forward.get('edge-1');
  assert.equal(c?.connected, false);
  assert.equal(c?.lastConnected, new Date(T0 - 60_000).toISOString());
  assert.equal(c?.lastDisconnected, new Date(T0 - 30_000).toISOString());
  assert.equal(c?.lastDisconnectReason, 'stream error: reset');
  assert.equal(c?.agentVersion, '1.4.0');
  assert.equal(
    c?.lastSeen,
    new Date(T0 - 30_000).toISOString(),
    'the durable event gives lastSeen',
  );

  // Live session s2 is open; a late or replayed end of s1 must not close it.
  const live = status();
  live.connected('edge-1', 's2', hello('edge-1', '1.5.0'));
  live.foldEvent('disconnected', ended);
  live.foldEvent('connected', connected);
  assert.equal(live.get('edge-1')?.connected, true);
  assert.equal(live.get('edge-1')?.agentVersion, '1.5.0', 'the newest session names the version');
  assert.equal(live.get('edge-1')?.lastConnected, new Date(T0).toISOString());
  live.disconnected('edge-1', 's2', 'agent ended the stream');
  assert.equal(live.get('edge-1')?.lastDisconnectReason, 'agent ended the stream');
  assert.throws(
    () => live.foldEvent('connected', { ...connected, data: {} }),
    ValidationError,
    'a session event without a session id is malformed',
  );
});

test('history-keeps-session-starts-and-ends-queryable-by-kind-and-cluster', () => {
  const history = new HistoryLog({ retentionMs: 86_400_000, now: () => T0 });
  const first = sessionEvent('edge-1', 'connected', data('s1'), new Date(T0 - 3_000));
  assert.equal(history.add('connected', first), true);
  const end = data('s1', 'replaced by session s2');
  assert.equal(
    history.add('disconnected', sessionEvent('edge-1', 'disconnected', end, new Date(T0 - 2_000))),
    true,
  );
  assert.equal(
    history.add('connected', sessionEvent('edge-2', 'connected', data('s9'), new Date(T0 - 1_000))),
    true,
  );
  assert.equal(history.add('connected', first), false, 'ids are unique');
  const got = history.query({ cluster: 'edge-1', kinds: ['connected', 'disconnected'] });
  assert.deepEqual(
    got.map((e) => [e.kind, e.session?.id, e.session?.reason, e.revision]),
    [
      ['disconnected', 's1', 'replaced by session s2', ''],
      ['connected', 's1', '', 'r1'],
    ],
  );
  assert.equal(got[0]?.message, 'session s1 ended: replaced by session s2');
  assert.equal(got[1]?.session?.agentVersion, '1.4.0');
  assert.equal(history.query({ kinds: ['applied'] }).length, 0);
});

test('only-the-hub-subject-carries-session-events-and-only-their-own-cluster', () => {
  const ev = sessionEvent('edge-1', 'connected', data('s1'), new Date(T0));
  assert.doesNotThrow(() => checkEventSubject(sessionSubject('edge-1'), 'connected', ev));
  assert.throws(
    () => checkEventSubject('flotilla.events.edge-1.connected', 'connected', ev),
    /connected event about cluster "edge-1" arrived on subject flotilla\.events\.edge-1\.connected, expected flotilla\.hub\.sessions\.edge-1/,
    'an agent cannot forge a session event on its own subjects',
  );
  assert.throws(
    () => checkEventSubject(sessionSubject('edge-2'), 'connected', ev),
    ValidationError,
  );
  const applied = createEvent('edge-2', 'applied', {});
  assert.throws(
    () => checkEventSubject('flotilla.events.edge-1.applied', 'applied', applied),
    /about cluster "edge-2" arrived on subject flotilla\.events\.edge-1\.applied/,
    'an agent cannot speak for another cluster',
  );
  assert.doesNotThrow(() =>
    checkEventSubject('flotilla.events.edge-2.applied', 'applied', applied),
  );
});
