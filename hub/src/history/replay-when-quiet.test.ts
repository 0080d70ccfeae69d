import assert from 'node:assert/strict';
import test from 'node:test';
import { whenQuiet } from './replay-when-quiet.js';

test('waits-while-the-count-grows-then-resolves-once-it-stops', async () => {
  let n = 0;
  let grows = 10;
  const grow = setInterval(() => {
    if (grows-- > 0) n++;
  }, 20);
  try {
    await whenQuiet(() => n, 100, 60_000);
    // Every increment happened before it resolved.
    assert.equal(n, 10);
  } finally {
    clearInterval(grow);
  }
});

test('resolves-at-the-bound-even-if-the-count-keeps-growing', async () => {
  let n = 0;
  const grow = setInterval(() => n++, 5);
  try {
    await whenQuiet(() => n, 60_000, 200);
    assert.ok(n > 0);
  } finally {
    clearInterval(grow);
  }
});
