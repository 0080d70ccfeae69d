// KindWatcher against a fake WatchSource (our own interface): the stream protocol,
// bookmarks, and a relist after 410 Gone that reports what vanished meanwhile.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { it } from 'node:test';
import { silentLogger } from '@flotilla/common';
import type { KubeObject } from '@flotilla/common';
import type { ListOptions } from './types.js';
import { KindWatcher } from './watch.js';
import type { WatchEvent, WatchSource } from './watch.js';

const cm = (name: string, rv: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, namespace: 'd', resourceVersion: rv },
});

class FakeSource implements WatchSource {
  lists: KubeObject[][] = [];
  streams: PassThrough[] = [];
  watchedFrom: string[] = [];
  listed = 0;
  async listVersioned(): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    this.listed++;
    return { items: this.lists.shift() ?? [], resourceVersion: String(10 * this.listed) };
  }
  async openWatch(
    _v: string,
    _k: string,
    opts: ListOptions & { resourceVersion: string },
  ): Promise<IncomingMessage> {
    this.watchedFrom.push(opts.resourceVersion);
    const s = new PassThrough();
    // Like a real request: aborting the signal destroys the response.
    opts.signal?.addEventListener('abort', () => s.destroy());
    this.streams.push(s);
    return s as unknown as IncomingMessage;
  }
}

async function until(fn: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

it('watch-delivers-list-then-events-and-relists-after-410-reporting-vanished-objects', async () => {
  const src = new FakeSource();
  src.lists = [[cm('a', '1'), cm('b', '2')], [cm('a', '7')]];
  const events: WatchEvent[] = [];
  const w = new KindWatcher(src, {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    onEvent: (e) => events.push(e),
    logger: silentLogger(),
    retryInitialMs: 1,
  });
  w.start();
  await w.synced;
  await until(() => src.streams.length === 1, 'first watch');
  const line = (o: unknown): string => `${JSON.stringify(o)}\n`;
  const first = src.streams[0] as PassThrough;
  // A line split across chunks, a bookmark, then an expired watch.
  const text = line({
    type: 'MODIFIED',
    object: { ...cm('a', '5'), kind: 'ConfigMap', apiVersion: 'v1' },
  });
  first.write(text.slice(0, 10));
  first.write(text.slice(10));
  first.write(
    line({
      type: 'BOOKMARK',
      object: { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: '6' } },
    }),
  );
  first.write(
    line({
      type: 'ERROR',
      object: { kind: 'Status', code: 410, message: 'too old resource version' },
    }),
  );
  await until(() => src.streams.length === 2, 'watch after relist');
  await w.stop();
  assert.deepEqual(
    events.map((e) => `${e.type} ${e.object.metadata.name}`),
    ['SYNC a', 'SYNC b', 'MODIFIED a', 'SYNC a', 'DELETED b'],
  );
  assert.deepEqual(src.watchedFrom, ['10', '20']);
});
