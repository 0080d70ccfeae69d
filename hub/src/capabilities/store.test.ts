import assert from 'node:assert/strict';
import test from 'node:test';
import { Writable } from 'node:stream';
import {
  CAPABILITIES_LIMITS,
  EVENT_LIMITS,
  apiVersionsSize,
  checkCapabilities,
  createLogger,
  silentLogger,
} from '@flotilla/common';
import { loadFlotillaProto } from '@flotilla/proto';
import { MAX_RECEIVE_MESSAGE_BYTES } from '../stream/grpc-server.js';
import type { Logger } from '@flotilla/common';
import { CapabilitiesStore } from './store.js';

const caps = (kubeVersion = 'v1.35.4', extra: string[] = []) => ({
  kubeVersion,
  apiVersions: ['v1', 'apps/v1', 'apps/v1/Deployment', ...extra],
});

function warnings(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write: (chunk: Buffer, _enc, cb) => (lines.push(chunk.toString()), cb()),
  });
  return { logger: createLogger({ name: 'test', level: 'warn', destination }), lines };
}

test('equal-reports-from-many-clusters-share-one-object-and-repeat-reports-change-nothing', () => {
  const store = new CapabilitiesStore({ logger: silentLogger() });
  const changes: string[][] = [];
  store.onChange((c) => changes.push(c));
  store.reported('a', caps());
  store.reported('b', {
    kubeVersion: 'v1.35.4',
    apiVersions: ['apps/v1/Deployment', 'apps/v1', 'v1'],
  });
  store.reported('a', caps());
  const view = store.snapshot();
  assert.equal(view.get('a'), view.get('b'), 'one interned object');
  assert.deepEqual(view.get('a')?.apiVersions, ['apps/v1', 'apps/v1/Deployment', 'v1']);
  assert.equal(store.distinctSets, 1);
  assert.deepEqual(changes, [['a'], ['b']]);
  assert.equal(store.snapshot(), view, 'unchanged view is reused');
  store.reported('b', caps('v1.35.4', ['monitoring.coreos.com/v1']));
  assert.deepEqual(changes.at(-1), ['b']);
  assert.notEqual(store.snapshot(), view);
  assert.equal(store.distinctSets, 2);
  store.reported('a', caps('v1.35.4', ['monitoring.coreos.com/v1']));
  assert.equal(store.distinctSets, 1, 'a set no cluster uses is released');
});

test('a-report-over-the-limits-is-refused-logged-once-and-the-previous-one-kept', () => {
  const { logger, lines } = warnings();
  const store = new CapabilitiesStore({ logger });
  store.reported('a', caps());
  const huge = Array.from(
    { length: CAPABILITIES_LIMITS.maxApiVersions + 1 },
    (_, i) => `g${i}.io/v1`,
  );
  store.reported('a', { kubeVersion: 'v1.35.4', apiVersions: huge });
  store.reported('a', { kubeVersion: 'v1.35.4', apiVersions: huge });
  assert.deepEqual(store.get('a')?.apiVersions, ['apps/v1', 'apps/v1/Deployment', 'v1']);
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? '', /more than the limit of 5000.*capabilities report refused/);
  store.reported('b', { kubeVersion: 'v0.0.0-master+$Format:%H$', apiVersions: ['v1'] });
  assert.equal(store.get('b'), undefined);
  assert.match(lines[1] ?? '', /"cluster":"b".*is not a version like v1\.35\.4/);
});

test('restored-records-never-override-a-report-made-since-start', () => {
  const store = new CapabilitiesStore({ logger: silentLogger() });
  const changes: string[][] = [];
  store.onChange((c) => changes.push(c));
  store.reported('live', caps('v1.35.4'));
  const n = store.restore([
    { cluster: 'live', ...caps('v1.30.0'), reportedAt: '2026-01-01T00:00:00.000Z' },
    { cluster: 'old', ...caps('v1.31.1'), reportedAt: '2026-01-01T00:00:00.000Z' },
    { cluster: 'bad', kubeVersion: 'nope', apiVersions: [], reportedAt: '' },
  ]);
  assert.equal(n, 1);
  assert.equal(store.get('live')?.kubeVersion, 'v1.35.4');
  assert.equal(store.get('old')?.kubeVersion, 'v1.31.1');
  assert.equal(store.get('old')?.reportedAt, '2026-01-01T00:00:00.000Z');
  assert.deepEqual(changes, [['live'], ['old']]);
  assert.deepEqual(
    store.takeDirty().map((r) => r.cluster),
    ['live'],
    'restored records are not written back',
  );
});

test('a-hello-with-capabilities-at-the-limits-fits-in-one-message-the-hub-accepts', () => {
  // The longest entries allowed, as many as the byte budget takes, and every other
  // field of the hello at its longest.
  const entry = (i: number): string =>
    `${'g'.repeat(CAPABILITIES_LIMITS.maxEntryLength - 12)}${String(i).padStart(4, '0')}.io/v1`;
  const apiVersions: string[] = [];
  for (
    let i = 0;
    apiVersionsSize([...apiVersions, entry(i)]) <= CAPABILITIES_LIMITS.maxEncodedBytes;
    i++
  )
    apiVersions.push(entry(i));
  const caps = checkCapabilities(
    {
      kubeVersion: `v1.35.4-${'x'.repeat(CAPABILITIES_LIMITS.maxKubeVersionLength - 9)}`,
      apiVersions,
    },
    'test',
  );
  const serialize = loadFlotillaProto().AgentStream.service.Connect.requestSerialize;
  const bytes = serialize({
    hello: {
      cluster: 'c'.repeat(63),
      agentVersion: 'v'.repeat(EVENT_LIMITS.tokenChars),
      appliedDigest: 'd'.repeat(EVENT_LIMITS.tokenChars),
      appliedRevision: 'r'.repeat(EVENT_LIMITS.tokenChars),
      protocolVersion: 1,
      capabilities: { kubeVersion: caps.kubeVersion, apiVersions: [...caps.apiVersions] },
    },
  });
  assert.ok(bytes.length <= MAX_RECEIVE_MESSAGE_BYTES, `${bytes.length} bytes`);
});
