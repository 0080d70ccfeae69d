import assert from 'node:assert/strict';
import test from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parseEvent } from '@flotilla/common';
import type { EventKind, FlotillaEvent } from '@flotilla/common';
import { sessionEvent } from '../status/session-events.js';
import { appliedEvent, driftEvent, healthEvent } from '../status/testing.js';
import { HistoryLog } from './history-log.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// The heap after full collections: what is live.
function liveHeap(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().heapUsed;
}

const N = 20_000;
const T0 = Date.parse('2026-12-03T12:00:00Z');
const BUNDLES = ['b0', 'b1', 'b2', 'b3', 'b4'];
const DIGESTS = Object.fromEntries(BUNDLES.map((b, i) => [b, `sha256:${String(i).repeat(64)}`]));
const REV = 'a'.repeat(40);
const cluster = (i: number): string => `cluster-${String(i % 1000).padStart(4, '0')}`;
const at = (i: number): Date => new Date(T0 + i);

// As the consumer reads an event: every text a new string, as JSON.parse makes it.
const kindRead = new WeakMap<FlotillaEvent, EventKind>();
function read(e: FlotillaEvent): FlotillaEvent {
  if (!e.specversion) return e;
  const { kind, event } = parseEvent(JSON.stringify(e));
  kindRead.set(event, kind);
  return event;
}
const kindOf = (e: FlotillaEvent): EventKind => kindRead.get(e)!;

/**
 * Adds n events of make() to a log, each read from its JSON as the consumer reads it, after
 * a warm-up that fills the shared pools; returns the live heap they added and what the
 * log accounted for them.
 */
function measure(
  make: (i: number) => FlotillaEvent,
  add: (log: HistoryLog, e: FlotillaEvent) => void = (log, e) => log.add(kindOf(e), e),
): { real: number; accounted: number } {
  const log = new HistoryLog({ retentionMs: 365 * 86_400_000, now: () => T0 + 2 * N });
  const feed = (from: number, to: number) => {
    for (let i = from; i < to; i++) add(log, read(make(i)));
  };
  feed(0, 2_000);
  const [heap0, bytes0] = [liveHeap(), log.bytesOf()];
  feed(2_000, 2_000 + N);
  const [heap1, bytes1] = [liveHeap(), log.bytesOf()];
  assert.equal(log.size, 2_000 + N);
  return { real: heap1 - heap0, accounted: bytes1 - bytes0 };
}

const kinds: Record<string, (i: number) => FlotillaEvent> = {
  applied: (i) => appliedEvent(cluster(i), REV, `sha256:${'e'.repeat(64)}`, DIGESTS, at(i)),
  'health-changed': (i) =>
    healthEvent(cluster(i), BUNDLES[i % 5]!, i % 3 ? 'Ready' : 'Progressing', at(i), {
      revision: REV,
      reasons: i % 3 ? [] : ['Deployment apps/web: 1 of 3 replicas available'],
    }),
  'drift-detected': (i) => driftEvent(cluster(i), 'b1', at(i), { name: `web-${i % 3}` }),
  connected: (i) =>
    sessionEvent(
      cluster(i),
      i % 2 ? 'connected' : 'disconnected',
      {
        session: `${cluster(i)}-${i.toString(36)}-7f3a9c2e`,
        agentVersion: '0.1.0',
        reason: i % 2 ? '' : 'the agent closed the stream',
        hub: 'hub-a',
        appliedRevision: REV,
        appliedDigest: `sha256:${'e'.repeat(64)}`,
      },
      at(i),
    ),
};

// Accounted bytes may exceed the heap (texts shared between entries are counted for each,
// so that a flood of distinct texts cannot pass the caps) but never fall short of it.
const FACTOR = { under: 0.9, over: 1.5 };
function assertTracks(what: string, { real, accounted }: { real: number; accounted: number }) {
  const ratio = accounted / real;
  if (process.env.FLOTILLA_PRINT)
    console.log(what, (real / N).toFixed(0), (accounted / N).toFixed(0), ratio.toFixed(2));
  assert.ok(
    ratio >= FACTOR.under && ratio <= FACTOR.over,
    `${what}: accounted ${(accounted / N).toFixed(0)} B per entry, heap ${(real / N).toFixed(0)} B (×${ratio.toFixed(2)}, must be ${FACTOR.under}–${FACTOR.over})`,
  );
}

for (const [kind, make] of Object.entries(kinds))
  test(`history-bytes-track-the-heap: ${kind}`, () => assertTracks(kind, measure(make)));

test('history-bytes-track-the-heap: a mix as the soak sends it', () => {
  const all = Object.values(kinds);
  assertTracks(
    'mix',
    measure((i) => all[i % all.length]!(i)),
  );
});

// A flood of events whose every text is new (what a hostile agent would send) is accounted
// at what it takes: the caps hold in real bytes.
test('history-bytes-track-the-heap: drift of distinct long texts', () => {
  const long = (i: number, what: string) => `${what}-${i}-${'x'.repeat(200)}`;
  assertTracks(
    'distinct drift',
    measure((i) =>
      driftEvent(cluster(i), 'b1', at(i), {
        name: long(i, 'name'),
        fields: [long(i, '/spec/a'), long(i, '/spec/b')],
        changedBy: [long(i, 'manager').slice(0, 120)],
      }),
    ),
  );
});

test('history-bytes-track-the-heap: rollout transitions and audit entries', () => {
  assertTracks(
    'rollout',
    measure(
      (i) => ({ id: `r-${i}`, time: at(i).toISOString() }) as unknown as FlotillaEvent,
      (log, e) =>
        log.addRollout({
          id: e.id,
          atMs: Date.parse(e.time),
          cluster: cluster(Number(e.id.slice(2))),
          bundle: 'b1',
          rollout: 'b1-aaaaaaa',
          revision: REV,
          stage: 2,
          from: 'Waiting',
          to: 'Progressing',
          message: 'stage 2 of 4 admitted it',
        }),
    ),
  );
  assertTracks(
    'audit',
    measure(
      (i) => ({ id: `a-${i}`, time: at(i).toISOString() }) as unknown as FlotillaEvent,
      (log, e) =>
        log.addAudit({
          id: e.id,
          atMs: Date.parse(e.time),
          actor: 'admin alice',
          action: 'cluster.add',
          target: cluster(Number(e.id.slice(2))),
          result: 'ok',
          message: `cluster ${e.id} added`,
        }),
    ),
  );
});
