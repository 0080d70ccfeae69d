import assert from 'node:assert/strict';
import test from 'node:test';
import { EVENT_LIMITS, silentLogger } from '@flotilla/common';
import type { AppliedData, EventKind } from '@flotilla/common';
import { EVENT_DATA_MAX_BYTES, fitEventData } from './fit-event.js';
import { EventPublisher } from './publisher.js';
import type { EventSink } from './publisher.js';

function applied(bundles: number, failureChars: number): AppliedData {
  return {
    revision: 'r1',
    digest: 'sha256:d',
    generation: 1,
    result: 'partial',
    durationMs: 1,
    bundles: Array.from({ length: bundles }, (_, i) => ({
      name: `bundle-${i}`,
      digest: `sha256:${i}`,
      created: 0,
      configured: 0,
      unchanged: 1,
      deleted: 0,
      failed: 10,
      failures: Array.from({ length: 10 }, () => `v1/ConfigMap/a/b: ${'e'.repeat(failureChars)}`),
    })),
  };
}

test('an-agent-event-keeps-its-texts-within-what-the-hub-keeps', () => {
  const data = applied(2, 50_000);
  const fitted = fitEventData(data);
  assert.ok(fitted);
  assert.equal(fitted.cut, 20);
  assert.ok(
    fitted.data.bundles.every((b) => b.failures.every((f) => f.length === EVENT_LIMITS.textChars)),
  );
  assert.equal(data.bundles[0]?.failures[0]?.length, 50_018, 'the caller keeps its own data');
  const small = applied(2, 10);
  assert.equal(fitEventData(small)?.data, small, 'within the limits: the same object, no copy');
});

test('an-event-over-the-stream-limit-is-shrunk-then-dropped-when-it-cannot-fit', () => {
  const big = fitEventData(applied(100, 2_000));
  assert.ok(big, 'texts and lists of texts cut to fit');
  assert.ok(Buffer.byteLength(JSON.stringify(big.data)) <= EVENT_DATA_MAX_BYTES);
  assert.ok(
    big.data.bundles.every((b) => b.failures.length === 3 && b.failures[0]?.length === 128),
  );
  assert.equal(fitEventData(applied(5_000, 0)), undefined, '5,000 bundles fit no event');
});

test('the-publisher-counts-and-never-sends-an-event-that-cannot-fit', async () => {
  const sent: string[] = [];
  const sink: EventSink = {
    publish: async (subject: string) => void sent.push(subject),
    close: async () => undefined,
  };
  const p = new EventPublisher(sink, { cluster: 'east', logger: silentLogger() });
  p.publish('applied' as EventKind, applied(5_000, 0));
  p.publish('applied' as EventKind, applied(1, 0));
  await p.close(1_000);
  assert.equal(p.oversized, 1);
  assert.deepEqual(sent, ['flotilla.events.east.applied']);
});

test('a-drift-event-with-huge-object-values-is-kept-with-short-values', () => {
  const containers = Array.from({ length: 400 }, (_, i) => ({
    name: `c${i}`,
    env: Array.from({ length: 20 }, (_, j) => ({ name: `E${j}`, value: 'v'.repeat(50) })),
  }));
  const data = {
    bundle: 'app',
    revision: 'r1',
    object: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'a', name: 'web' },
    deleted: false,
    changes: [{ path: '/spec/template/spec/containers', old: containers, new: [] }],
    manager: 'kubectl-edit',
    mode: 'enforce',
    heals: 1,
    fight: false,
  };
  const fitted = fitEventData(data);
  assert.ok(fitted, 'the drift is still reported');
  assert.ok(Buffer.byteLength(JSON.stringify(fitted.data)) <= EVENT_DATA_MAX_BYTES);
  const change = fitted.data.changes[0] as { path: string; old: unknown; new: unknown };
  assert.equal(change.path, '/spec/template/spec/containers');
  assert.equal(typeof change.old, 'string');
  assert.ok(
    (change.old as string).startsWith('[{"name":"c0"') && (change.old as string).length === 128,
  );
  assert.equal(change.new, '[]');
});
