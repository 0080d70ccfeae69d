import assert from 'node:assert/strict';
import test from 'node:test';
import type { BundleApplyResult } from '@flotilla/common';
import type { ReconcileOutcome } from '../sync/reconcile.js';
import { applyMessage } from './apply-message.js';

const bundle = (name: string, more: Partial<BundleApplyResult>): BundleApplyResult => ({
  name,
  digest: `sha256:${name}`,
  created: 0,
  configured: 0,
  unchanged: 1,
  deleted: 0,
  failed: 0,
  failures: [],
  ...more,
});

const outcome = (bundles: BundleApplyResult[]): ReconcileOutcome => ({
  result: 'partial',
  bundles,
  objectsApplied: 3,
  objectsFailed: 1,
  writes: 0,
  durationMs: 5,
  wakes: [],
  notApplied: [],
});

test('refused-objects-lead-the-message-before-bundles-that-wait-for-a-hook', () => {
  const refused =
    'Deployment/jobs/worker: admission webhook "registries.policy.example.com" denied the request';
  const o = outcome([
    bundle('guarded', { failed: 1, failures: [refused] }),
    bundle('store', {
      waiting: {
        for: 'post-upgrade hook Job/store/reindex',
        reason: 'waiting for post-upgrade hook Job/store/reindex to complete',
      },
    }),
  ]);
  assert.equal(
    applyMessage(o),
    `${refused}; bundle store waiting for post-upgrade hook Job/store/reindex to complete`,
  );
  assert.equal(applyMessage(o, 'kube-apiserver unreachable'), 'kube-apiserver unreachable');
  assert.equal(applyMessage(outcome([bundle('web', {})])), '');
});

test('at-most-five-items-are-named', () => {
  const o = outcome(
    ['a', 'b', 'c', 'd', 'e', 'f'].map((n) =>
      bundle(n, { failed: 1, failures: [`ConfigMap/x/${n}: refused`] }),
    ),
  );
  assert.equal(applyMessage(o).split('; ').length, 5);
});
