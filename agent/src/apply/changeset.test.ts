import assert from 'node:assert/strict';
import { it } from 'node:test';
import { countActions, entry, failureMessages, writes } from './changeset.js';

it('change-set-counts-actions-and-lists-failures-with-their-reason', () => {
  const cm = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', namespace: 'web', name });
  const set = [
    entry(cm('a'), 'created'),
    entry(cm('b'), 'unchanged'),
    entry(cm('c'), 'failed', 'strict decoding error'),
    entry({ apiVersion: 'v1', kind: 'Namespace', name: 'web' }, 'deleted'),
  ];
  assert.deepEqual(countActions(set), {
    created: 1,
    configured: 0,
    unchanged: 1,
    deleted: 1,
    failed: 1,
  });
  assert.deepEqual(failureMessages(set), ['ConfigMap/web/c: strict decoding error']);
  assert.equal(writes(set).length, 2);
});
