import assert from 'node:assert/strict';
import test from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { HeartbeatWheel, STALL_MIN_MS } from './heartbeats.js';
import type { HeartbeatSubject } from './heartbeats.js';

interface Tick {
  subject: number;
  tick: number;
  judge: boolean;
}

function subjects(n: number, ticks: Tick[], tickOf: () => number): HeartbeatSubject[] {
  return Array.from({ length: n }, (_, subject) => ({
    heartbeatTick: (judge: boolean) => ticks.push({ subject, tick: tickOf(), judge }),
  }));
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 10) {
    if (waited > 10_000) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

test('sessions-are-spread-over-the-wheel-each-looked-at-once-per-interval', async () => {
  const ticks: Tick[] = [];
  let tick = 0;
  const wheel = new HeartbeatWheel({ intervalMs: 100, slots: 10 });
  const list = subjects(50, ticks, () => tick);
  for (const s of list) wheel.add(s);
  // Each tick of the wheel is one call per subject of one slot; a new tick number per turn.
  const counter = setInterval(() => tick++, 1);
  try {
    await until(() => new Set(ticks.map((t) => t.subject)).size === 50, 'every subject ticked');
  } finally {
    clearInterval(counter);
    wheel.stop();
  }
  const perTick = new Map<number, number>();
  for (const t of ticks) perTick.set(t.tick, (perTick.get(t.tick) ?? 0) + 1);
  assert.ok(
    Math.max(...perTick.values()) <= 5,
    `one slot (a tenth of the sessions) per tick, saw ${Math.max(...perTick.values())}`,
  );
  const perSubject = new Map<number, number>();
  for (const t of ticks) perSubject.set(t.subject, (perSubject.get(t.subject) ?? 0) + 1);
  assert.equal(perSubject.size, 50);
});

test('a-tick-after-the-hubs-loop-was-held-closes-nothing-the-next-one-judges', async () => {
  const ticks: Tick[] = [];
  const wheel = new HeartbeatWheel({ intervalMs: 20, slots: 1 });
  for (const s of subjects(1, ticks, () => 0)) wheel.add(s);
  try {
    await until(() => ticks.length >= 2, 'two ticks');
    assert.ok(ticks.every((t) => t.judge));
    const before = ticks.length;
    const held = Date.now() + STALL_MIN_MS + 100;
    while (Date.now() < held) {
      /* the loop is held */
    }
    await until(() => ticks.length >= before + 2, 'two ticks after the stall');
    assert.deepEqual(
      ticks.slice(before, before + 2).map((t) => t.judge),
      [false, true],
    );
    assert.equal(wheel.stalledTicks, 1);
  } finally {
    wheel.stop();
  }
});

test('a-late-tick-serves-every-slot-that-came-due-meanwhile', async () => {
  // Subjects ticked in the same turn of the loop share a batch number.
  let batch = 0;
  let open = false;
  const ticks: Tick[] = [];
  const batchOf = (): number => {
    if (!open) {
      open = true;
      batch++;
      queueMicrotask(() => (open = false));
    }
    return batch;
  };
  // 10 slots of one subject each, a tick every 100 ms.
  const wheel = new HeartbeatWheel({ intervalMs: 1_000, slots: 10 });
  for (const s of subjects(10, ticks, batchOf)) wheel.add(s);
  try {
    const held = Date.now() + 650;
    while (Date.now() < held) {
      /* the loop is held for six periods and more */
    }
    await until(() => ticks.length > 0, 'the first tick');
    const first = ticks.filter((t) => t.tick === ticks[0]?.tick);
    assert.ok(
      first.length >= 6,
      `the late tick serves the 6 slots that came due, served ${first.length}`,
    );
    assert.ok(
      first.every((t) => !t.judge),
      'a late tick closes nothing',
    );
    assert.equal(new Set(first.map((t) => t.subject)).size, first.length);
  } finally {
    wheel.stop();
  }
});

test('a-removed-session-is-not-ticked-and-the-last-one-stops-the-timer', async () => {
  const ticks: Tick[] = [];
  const wheel = new HeartbeatWheel({ intervalMs: 20, slots: 2 });
  const [a, b] = subjects(2, ticks, () => 0) as [HeartbeatSubject, HeartbeatSubject];
  wheel.add(a);
  wheel.add(b);
  wheel.remove(a);
  await until(() => ticks.length >= 3, 'three ticks');
  assert.ok(ticks.every((t) => t.subject === 1));
  wheel.remove(b);
  assert.equal(wheel.size, 0);
  const n = ticks.length;
  await delay(60);
  assert.equal(ticks.length, n, 'no tick once the wheel is empty');
});
