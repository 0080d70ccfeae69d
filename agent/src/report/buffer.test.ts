import assert from 'node:assert/strict';
import { it } from 'node:test';
import { DropOldestBuffer } from './buffer.js';

it('full-buffer-drops-the-oldest-and-counts-drops', () => {
  const b = new DropOldestBuffer<number>(3);
  for (let i = 1; i <= 5; i++) b.push(i);
  assert.equal(b.size, 3);
  assert.equal(b.dropped, 2);
  assert.deepEqual([b.shift(), b.shift(), b.peek(), b.shift(), b.shift()], [3, 4, 5, 5, undefined]);
  b.push(6);
  assert.deepEqual([b.size, b.peek()], [1, 6]);
  assert.throws(() => new DropOldestBuffer(0), RangeError);
});
