import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { KubeObject } from '@flotilla/common';
import { changedBy, ownsPath } from './attribution.js';
import { REDACTED, driftChanges, ignoredPaths, publishable, withoutIgnored } from './changes.js';
import { HealPolicy } from './heal-policy.js';

const obj = (spec: unknown, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'default', resourceVersion: '1', ...extra },
  spec,
});

it('changes-are-leaf-json-pointers-with-old-and-new-values-ignoring-status-and-server-metadata', () => {
  const desired = obj({
    replicas: 2,
    template: { spec: { containers: [{ name: 'a', image: 'x:1' }] } },
  });
  const live = {
    ...obj(
      {
        replicas: 2,
        template: { spec: { containers: [{ name: 'a', image: 'x:2' }] } },
        paused: true,
      },
      { resourceVersion: '9' },
    ),
    status: { ready: 1 },
  };
  assert.deepEqual(driftChanges(desired, live), [
    { path: '/spec/template/spec/containers/0/image', old: 'x:1', new: 'x:2' },
    { path: '/spec/paused', new: true },
  ]);
  assert.deepEqual(driftChanges(desired, desired), []);
});

it('ignore-rules-match-by-kind-name-namespace-and-cover-paths-below', () => {
  const o = obj({});
  const paths = ignoredPaths(
    [
      { kind: 'Deployment', paths: ['/spec/replicas'] },
      { kind: 'Service', paths: ['/spec'] },
      { name: 'other', paths: ['/metadata'] },
    ],
    o,
  );
  assert.deepEqual(paths, ['/spec/replicas']);
  const changes = [
    { path: '/spec/replicas', old: 1, new: 3 },
    { path: '/spec/replicasX', old: 1 },
    { path: '/spec/template/x' },
  ];
  assert.deepEqual(
    withoutIgnored(changes, ['/spec/replicas']).map((c) => c.path),
    ['/spec/replicasX', '/spec/template/x'],
  );
});

it('secret-values-are-redacted-and-long-values-cut', () => {
  const shown = publishable('Secret', [
    { path: '/data/password', old: 'aHVudGVyMg==', new: 'bGVha2Vk' },
    { path: '/metadata/labels/app', old: 'a', new: 'b' },
  ]);
  assert.deepEqual(shown, [
    { path: '/data/password', old: REDACTED, new: REDACTED },
    { path: '/metadata/labels/app', old: 'a', new: 'b' },
  ]);
  const long = publishable('ConfigMap', [{ path: '/data/big', new: 'x'.repeat(1000) }], 10);
  assert.equal(String(long[0]?.new).length, 11);
});

it('the-manager-owning-a-changed-path-is-named-from-managed-fields', () => {
  const live = obj(
    { template: { spec: { containers: [{ name: 'a', image: 'x:2' }] } } },
    {
      managedFields: [
        {
          manager: 'flotilla',
          operation: 'Apply',
          time: '2026-01-01T00:00:00Z',
          fieldsV1: { 'f:spec': { 'f:template': {} } },
        },
        {
          manager: 'kubectl-edit',
          operation: 'Update',
          time: '2026-01-01T00:00:01Z',
          fieldsV1: {
            'f:spec': {
              'f:template': {
                'f:spec': { 'f:containers': { 'k:{"name":"a"}': { 'f:image': {} } } },
              },
            },
          },
        },
        {
          manager: 'late',
          operation: 'Update',
          time: '2026-01-01T00:00:09Z',
          fieldsV1: { 'f:metadata': {} },
        },
      ],
    },
  );
  assert.equal(ownsPath({ 'f:spec': { 'f:replicas': {} } }, live, '/spec/replicas'), true);
  assert.equal(changedBy(live, ['/spec/template/spec/containers/0/image']), 'kubectl-edit');
  // Nobody owns a removed field: the latest non-Flotilla writer is named.
  assert.equal(changedBy(live, ['/spec/paused']), 'late');
  assert.equal(changedBy(undefined, ['/']), '');
});

it('heals-back-off-per-object-and-repeated-heals-in-the-window-are-a-fight', () => {
  const p = new HealPolicy({ windowMs: 1_000, fightThreshold: 3, initialMs: 100, maxMs: 250 });
  assert.deepEqual(
    [0, 10, 20, 30].map((t) => p.next('a', t)),
    [
      { heals: 1, fight: false, delayMs: 0 },
      { heals: 2, fight: false, delayMs: 100 },
      { heals: 3, fight: true, delayMs: 200 },
      { heals: 4, fight: true, delayMs: 250 },
    ],
  );
  assert.deepEqual(p.next('b', 40), { heals: 1, fight: false, delayMs: 0 });
  // Outside the window the history is forgotten.
  assert.deepEqual(p.next('a', 5_000), { heals: 1, fight: false, delayMs: 0 });
});
