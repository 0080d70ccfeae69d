import assert from 'node:assert/strict';
import test from 'node:test';
import { Backoff } from './backoff.js';
import { bundleDigest, desiredStateDigest, objectKey } from './desired-state.js';
import { parseDuration } from './durations.js';
import { ConfigError, FlotillaError, ValidationError, isRetryable } from './errors.js';
import { createEvent, eventSubject, parseEvent } from './events.js';
import { canonicalJson, digestJson } from './hash.js';
import { assertDnsLabel } from './names.js';
import { parseYamlDocuments, parseYamlObject } from './yaml.js';

test('durations-parse-units-and-reject-garbage', () => {
  assert.equal(parseDuration('250ms'), 250);
  assert.equal(parseDuration('30s'), 30_000);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1500'), 1500);
  assert.throws(() => parseDuration('5 minutes'), /invalid duration "5 minutes"/);
  assert.throws(() => parseDuration(''), /invalid duration/);
});

test('backoff-grows-caps-and-resets-with-jitter-inside-bounds', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 1000, jitter: 0.5, random: () => 0.999 });
  const delays = Array.from({ length: 6 }, () => b.next());
  assert.deepEqual(delays, [100, 200, 400, 800, 1000, 1000]);
  const low = new Backoff({ initialMs: 100, jitter: 0.5, random: () => 0 });
  assert.equal(low.next(), 50);
  b.reset();
  assert.equal(b.attempts, 0);
});

test('canonical-json-is-independent-of-key-order', () => {
  assert.equal(
    canonicalJson({ b: 1, a: { d: [2, 1], c: null } }),
    '{"a":{"c":null,"d":[2,1]},"b":1}',
  );
  assert.equal(digestJson({ x: 1, y: 2 }), digestJson({ y: 2, x: 1 }));
  assert.notEqual(digestJson({ x: 1 }), digestJson({ x: 2 }));
});

test('desired-state-digest-ignores-bundle-order-and-covers-content', () => {
  const obj = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'n' } };
  const base = {
    name: 'app',
    drift: { mode: 'enforce' as const, ignore: [] },
    forceConflicts: true,
    objects: [obj],
  };
  const d1 = bundleDigest(base);
  const d2 = bundleDigest({ ...base, objects: [{ ...obj, data: { k: 'v' } }] });
  assert.notEqual(d1, d2);
  assert.equal(
    desiredStateDigest('c1', [
      { name: 'a', digest: d1 },
      { name: 'b', digest: d2 },
    ]),
    desiredStateDigest('c1', [
      { name: 'b', digest: d2 },
      { name: 'a', digest: d1 },
    ]),
  );
  assert.notEqual(
    desiredStateDigest('c1', [{ name: 'a', digest: d1 }]),
    desiredStateDigest('c2', [{ name: 'a', digest: d1 }]),
  );
  assert.equal(
    objectKey({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x', namespace: 'ns' },
    }),
    'apps/Deployment/ns/x',
  );
});

test('mass-prune-opt-ins-and-policy-change-the-digests-only-when-given', () => {
  const base = {
    name: 'app',
    drift: { mode: 'enforce' as const, ignore: [] },
    forceConflicts: true,
    objects: [],
  };
  assert.equal(bundleDigest(base), bundleDigest({ ...base, allowMassPrune: false }));
  assert.notEqual(bundleDigest(base), bundleDigest({ ...base, allowMassPrune: true }));
  const bundles = [{ name: 'app', digest: bundleDigest(base) }];
  const plain = desiredStateDigest('c1', bundles);
  assert.equal(plain, desiredStateDigest('c1', bundles, [], undefined));
  const half = desiredStateDigest('c1', bundles, [], { maxShare: 0.5 });
  assert.notEqual(plain, half);
  assert.notEqual(half, desiredStateDigest('c1', bundles, [], { maxShare: 0.3 }));
  assert.notEqual(
    half,
    desiredStateDigest('c1', bundles, [], { maxShare: 0.5, allowMassPrune: true }),
  );
});

test('errors-carry-codes-fields-and-retryability', () => {
  const e = new ConfigError('grpc.listen', 'must be host:port', { file: 'hub.yaml' });
  assert.equal(e.message, 'hub.yaml: grpc.listen: must be host:port');
  assert.equal(e.code, 'CONFIG_INVALID');
  assert.equal(isRetryable(e), false);
  assert.deepEqual(new ValidationError('bad', { file: 'a.yaml', line: 3 }).toJSON(), {
    code: 'VALIDATION_FAILED',
    message: 'a.yaml:3: bad',
    retryable: false,
    details: { file: 'a.yaml', line: 3 },
  });
  assert.equal(new FlotillaError('UNAVAILABLE', 'x', { retryable: true }).retryable, true);
});

test('events-round-trip-and-malformed-events-are-rejected-with-reason', () => {
  const ev = createEvent('edge-1', 'applied', { revision: 'abc' });
  assert.equal(eventSubject('edge-1', 'applied'), 'flotilla.events.edge-1.applied');
  const parsed = parseEvent(JSON.stringify(ev));
  assert.equal(parsed.kind, 'applied');
  assert.equal(parsed.event.id, ev.id);
  assert.throws(() => parseEvent('{not json'), /not valid JSON/);
  assert.throws(
    () => parseEvent(JSON.stringify({ ...ev, type: 'x.y' })),
    /unknown event type "x.y"/,
  );
  assert.throws(
    () => parseEvent(JSON.stringify({ ...ev, flotillacluster: 'Bad_Name' })),
    /invalid cluster/,
  );
  assert.throws(() => parseEvent(JSON.stringify({ ...ev, id: '' })), /no id/);
});

test('yaml-errors-name-file-and-line', () => {
  assert.throws(
    () => parseYamlDocuments('a: 1\nb: [1, 2\nc: 3\n', 'x.yaml'),
    (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.file, 'x.yaml');
      assert.ok(typeof err.line === 'number' && err.line >= 2, `line ${err.line}`);
      return true;
    },
  );
  const docs = parseYamlDocuments('---\na: 1\n---\n---\nb: 2\n', 'y.yaml');
  assert.deepEqual(
    docs.map((d) => d.value),
    [{ a: 1 }, { b: 2 }],
  );
  assert.deepEqual(
    docs.map((d) => d.line),
    [2, 5],
  );
  assert.throws(() => parseYamlObject('- 1\n', 'z.yaml'), /z.yaml:1: expected a YAML mapping/);
  assert.throws(() => parseYamlObject('a: 1\na: 2\n', 'dup.yaml'), /dup.yaml:2/);
});

test('cluster-names-must-be-dns-labels', () => {
  assertDnsLabel('edge-1', 'cluster');
  assert.throws(() => assertDnsLabel('Edge_1', 'cluster'), /cluster "Edge_1" is not a valid name/);
  assert.throws(() => assertDnsLabel('a.b', 'cluster'), /not a valid name/);
});
