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

function guardWithPeers(peer: () => string | undefined) {
  const clock = { now: 0, up: true, cuts: [] as string[], asked: 0 };
  const g = new NatsPartitionGuard({
    isConnected: () => clock.up,
    onCut: (reason) => clock.cuts.push(reason),
    servingPeer: () => {
      clock.asked++;
      return Promise.resolve(peer());
    },
    logger: silentLogger(),
    graceMs: 10_000,
    recheckMs: 5_000,
    now: () => clock.now,
  });
  return { g, clock };
}

test('nats-down-for-every-replica-keeps-the-agents-and-hands-them-over-once-a-peer-reaches-it', async () => {
  let peer: string | undefined;
  const { g, clock } = guardWithPeers(() => peer);
  clock.up = false;
  await g.check();
  clock.now = 10_000;
  await g.check();
  // Nobody else reaches NATS: the agents stay, the replica says why.
  assert.equal(g.state, 'outage');
  assert.equal(g.refusal, undefined);
  assert.deepEqual(clock.cuts, []);
  assert.match(g.outage ?? '', /no other hub replica reaches NATS either/);
  // Asked again only every recheck interval.
  clock.now = 12_000;
  await g.check();
  assert.equal(clock.asked, 1);
  // A peer reaches NATS again: the agents are sent there.
  peer = '10.0.0.7:7080';
  clock.now = 15_000;
  await g.check();
  assert.equal(clock.asked, 2);
  assert.equal(g.state, 'cut');
  assert.equal(clock.cuts.length, 1);
  assert.match(
    g.refusal ?? '',
    /while another \(10\.0\.0\.7:7080\) reaches it: connect to another replica/,
  );
  // That peer loses NATS too: the replica takes agents again rather than refusing everyone.
  peer = undefined;
  clock.now = 20_000;
  await g.check();
  assert.equal(g.state, 'outage');
  assert.equal(g.refusal, undefined);
  clock.up = true;
  await g.check();
  assert.equal(g.state, 'connected');
  assert.equal(g.outage, undefined);
});

test('a-replica-cut-alone-asks-its-peers-once-past-the-grace-and-sends-its-agents-away', async () => {
  const { g, clock } = guardWithPeers(() => '10.0.0.8:7080');
  clock.up = false;
  await g.check();
  clock.now = 9_999;
  await g.check();
  assert.equal(clock.asked, 0, 'no question before the grace');
  clock.now = 10_000;
  await g.check();
  assert.equal(g.state, 'cut');
  assert.equal(clock.cuts.length, 1);
  // Back before the answer of a later question: nothing is closed again.
  clock.now = 15_000;
  const pending = g.check();
  clock.up = true;
  await pending;
  assert.equal(clock.cuts.length, 1);
  await g.check();
  assert.equal(g.state, 'connected');
});
