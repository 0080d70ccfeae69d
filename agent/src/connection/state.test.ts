import assert from 'node:assert/strict';
import { it } from 'node:test';
import { silentLogger } from '@flotilla/common';
import { ConnectionStateMachine } from './state.js';

it('connection-state-machine-allows-the-lifecycle-and-refuses-shortcuts', () => {
  const sm = new ConnectionStateMachine(silentLogger());
  const seen: string[] = [];
  sm.onChange((s) => seen.push(s));
  assert.equal(sm.transition('connected', 'no'), false);
  for (const s of ['connecting', 'connected', 'backoff', 'connecting', 'closed'] as const)
    assert.equal(sm.transition(s, 'test'), true);
  assert.equal(sm.transition('connecting', 'after close'), false);
  assert.deepEqual(seen, ['connecting', 'connected', 'backoff', 'connecting', 'closed']);
});
