import assert from 'node:assert/strict';
import test from 'node:test';
import { Outbox } from './outbox.js';
import { desiredState } from './fixtures.js';

test('latest-desired-state-wins-over-unsent-ones', () => {
  const box = new Outbox();
  box.offerState(desiredState('c1', 'r1'));
  box.offerState(desiredState('c1', 'r2'));
  box.offerState(desiredState('c1', 'r3'));
  const item = box.next();
  assert.equal(item?.kind, 'state');
  assert.equal(item.kind === 'state' && item.state.revision, 'r3');
  assert.equal(box.next(), undefined);
});

test('control-messages-keep-their-order-and-go-before-state', () => {
  const box = new Outbox();
  box.offerState(desiredState('c1', 'r1'));
  box.pushMessage({ heartbeat: { sentAtMs: 1 } });
  box.pushMessage({ heartbeat: { sentAtMs: 2 } });
  const kinds = [box.next(), box.next(), box.next()].map((i) =>
    i?.kind === 'message' ? i.message.heartbeat?.sentAtMs : i?.kind,
  );
  assert.deepEqual(kinds, [1, 2, 'state']);
  assert.ok(box.idle);
});
