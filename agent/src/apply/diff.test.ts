import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { KubeObject } from '@flotilla/common';
import { sameObject } from './diff.js';

const base: KubeObject = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'a', namespace: 'web', labels: { x: '1' } },
  data: { k: 'v' },
};

it('server-maintained-metadata-and-status-are-not-differences', () => {
  const live = {
    ...base,
    metadata: {
      ...base.metadata,
      resourceVersion: '7',
      generation: 2,
      uid: 'u',
      creationTimestamp: 't',
      managedFields: [{ manager: 'flotilla' }],
    },
    status: { phase: 'x' },
  };
  const dryRun = {
    ...base,
    metadata: {
      ...base.metadata,
      resourceVersion: '8',
      managedFields: [{ manager: 'flotilla', time: 'later' }],
    },
  };
  assert.equal(sameObject(dryRun, live), true);
});

it('a-changed-value-or-label-is-a-difference', () => {
  assert.equal(sameObject({ ...base, data: { k: 'w' } }, base), false);
  assert.equal(
    sameObject({ ...base, metadata: { ...base.metadata, labels: { x: '2' } } }, base),
    false,
  );
});
