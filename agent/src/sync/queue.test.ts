import assert from 'node:assert/strict';
import { it } from 'node:test';
import { silentLogger } from '@flotilla/common';
import { LatestWinsQueue } from './queue.js';

it('applies-are-serialized-and-only-the-latest-waiting-job-runs', async () => {
  const ran: number[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const q = new LatestWinsQueue<number>(async (n) => {
    ran.push(n);
    if (n === 1) await gate;
  }, silentLogger());
  q.submit(1);
  q.submit(2);
  q.submit(3);
  release();
  await q.idle();
  assert.deepEqual(ran, [1, 3]);
});

it('a-waiting-job-with-priority-is-not-replaced', async () => {
  const ran: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const q = new LatestWinsQueue<string>(
    async (j) => {
      ran.push(j);
      if (j === 'first') await gate;
    },
    silentLogger(),
    (pending, next) => !(pending.startsWith('hub') && next === 'resync'),
  );
  q.submit('first');
  q.submit('hub-7');
  assert.equal(q.submit('resync'), false);
  release();
  await q.idle();
  assert.deepEqual(ran, ['first', 'hub-7']);
});

it('close-aborts-a-job-that-does-not-finish-in-time', async () => {
  let aborted = false;
  const q = new LatestWinsQueue<number>(
    (_n, signal) =>
      new Promise<void>((resolve) =>
        signal.addEventListener('abort', () => {
          aborted = true;
          resolve();
        }),
      ),
    silentLogger(),
  );
  q.submit(1);
  await q.close(20);
  assert.equal(aborted, true);
  assert.equal(q.submit(2), false);
});
