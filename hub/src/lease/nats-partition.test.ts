// A replica cut from NATS sends its agents away only after the grace, and takes them
// again once NATS is back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '@flotilla/common';
import { NatsPartitionGuard, refusingWhile } from './nats-partition.js';

function guard(graceMs = 10_000) {
  const clock = { now: 0, up: true, cuts: [] as string[] };
  const g = new NatsPartitionGuard({
    isConnected: () => clock.up,
    onCut: (reason) => clock.cuts.push(reason),
    logger: silentLogger(),
    graceMs,
    now: () => clock.now,
  });
  return { g, clock };
}

test('a-nats-blip-shorter-than-the-grace-moves-no-agent', () => {
  const { g, clock } = guard();
  clock.up = false;
  g.check();
  assert.equal(g.state, 'away');
  clock.now = 9_999;
  g.check();
  clock.up = true;
  g.check();
  assert.equal(g.state, 'connected');
  assert.equal(g.refusal, undefined);
  assert.deepEqual(clock.cuts, []);
});

test('a-replica-cut-from-nats-past-the-grace-closes-streams-once-and-refuses-until-back', () => {
  const { g, clock } = guard();
  clock.up = false;
  g.check();
  clock.now = 10_000;
  g.check();
  clock.now = 20_000;
  g.check();
  assert.equal(g.state, 'cut');
  assert.equal(clock.cuts.length, 1, 'streams closed once');
  assert.match(g.refusal ?? '', /cut from NATS for more than 10 s: connect to another replica/);
  clock.up = true;
  g.check();
  assert.equal(g.state, 'connected');
  assert.equal(g.refusal, undefined);
});

test('refused-agent-streams-end-unavailable-with-the-reason-and-never-reach-the-service', () => {
  let why: string | undefined = 'cut from NATS';
  const served: unknown[] = [];
  const handlers = refusingWhile({ Connect: (call: unknown) => served.push(call) }, () => why);
  const errors: unknown[] = [];
  const call = { emit: (_e: string, err: unknown) => errors.push(err) };
  handlers.Connect(call as never);
  assert.deepEqual(errors, [{ code: 14, details: 'cut from NATS' }]);
  assert.equal(served.length, 0);
  why = undefined;
  handlers.Connect(call as never);
  assert.equal(served.length, 1);
});
