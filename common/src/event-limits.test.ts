import assert from 'node:assert/strict';
import test from 'node:test';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EVENT_LIMITS, clipText } from './event-limits.js';
import { createEvent, parseEvent } from './events.js';

test('clip-text-keeps-short-text-and-marks-a-cut', () => {
  assert.equal(clipText('short', 10), 'short');
  const cut = clipText('x'.repeat(5_000), EVENT_LIMITS.textChars);
  assert.equal(cut.length, EVENT_LIMITS.textChars);
  assert.ok(cut.endsWith('…'));
});

test('clipped-text-does-not-keep-the-long-text-alive', () => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const used = (): number => {
    gc();
    return getHeapStatistics().used_heap_size;
  };
  const before = used();
  const kept: string[] = [];
  for (let i = 0; i < 50; i++) {
    // As JSON.parse hands it over: a string of its own, 1 MB long.
    const long = (
      JSON.parse(JSON.stringify({ r: `${i}${'y'.repeat(1_000_000)}` })) as { r: string }
    ).r;
    kept.push(clipText(long, 1_024));
  }
  const grown = used() - before;
  assert.equal(kept.length, 50);
  // 50 slices sharing their parents would keep 50 MB; copies keep about 50 KB.
  assert.ok(grown < 10_000_000, `heap grew ${grown} bytes for 50 clipped texts`);
});

test('event-with-an-overlong-id-is-refused', () => {
  const e = { ...createEvent('edge-1', 'applied', { x: 1 }), id: 'i'.repeat(129) };
  assert.throws(() => parseEvent(JSON.stringify(e)), /event id is longer than 128/);
});
