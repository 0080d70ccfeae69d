import assert from 'node:assert/strict';
import test from 'node:test';
import { compileLabelSelector, parseSelector } from './selector.js';

const prodEu = { env: 'prod', region: 'eu' };
const devUs = { env: 'dev', region: 'us', gpu: 'true' };

test('empty-selector-matches-everything', () => {
  assert.equal(compileLabelSelector({}).matches(prodEu), true);
  assert.equal(parseSelector('').matches(devUs), true);
});

test('match-labels-requires-every-label', () => {
  const sel = compileLabelSelector({ matchLabels: { env: 'prod', region: 'eu' } });
  assert.equal(sel.matches(prodEu), true);
  assert.equal(sel.matches({ env: 'prod' }), false);
});

test('match-expressions-follow-kubernetes-semantics', () => {
  const sel = compileLabelSelector({
    matchExpressions: [
      { key: 'region', operator: 'In', values: ['eu', 'us'] },
      { key: 'env', operator: 'NotIn', values: ['prod'] },
      { key: 'gpu', operator: 'Exists' },
      { key: 'legacy', operator: 'DoesNotExist' },
    ],
  });
  assert.equal(sel.matches(devUs), true);
  assert.equal(sel.matches(prodEu), false);
  assert.equal(sel.matches({ ...devUs, legacy: 'x' }), false);
  // NotIn matches when the key is absent, as in Kubernetes.
  assert.equal(
    compileLabelSelector({
      matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }],
    }).matches({}),
    true,
  );
});

test('bad-structured-selector-names-the-problem', () => {
  assert.throws(
    () => compileLabelSelector({ matchExpressions: [{ key: 'a', operator: 'In' }] }),
    /matchExpressions\[0\].*needs values/,
  );
  assert.throws(
    () =>
      compileLabelSelector({
        matchExpressions: [{ key: 'a', operator: 'Has' as 'In', values: ['x'] }],
      }),
    /unknown operator "Has"/,
  );
  assert.throws(
    () => compileLabelSelector({ matchLabels: { 'bad key!': 'x' } }),
    /invalid label key/,
  );
});

test('kubectl-selector-syntax-parses-all-forms', () => {
  assert.equal(parseSelector('env=prod').matches(prodEu), true);
  assert.equal(parseSelector('env==prod,region!=us').matches(prodEu), true);
  assert.equal(parseSelector('region in (us, ap)').matches(prodEu), false);
  assert.equal(parseSelector('region notin (us)').matches(prodEu), true);
  assert.equal(parseSelector('gpu').matches(devUs), true);
  assert.equal(parseSelector('!gpu').matches(devUs), false);
});

test('bad-kubectl-selector-is-a-clear-error', () => {
  assert.throws(() => parseSelector('env=prod;x'), /invalid selector "env=prod;x"/);
  assert.throws(() => parseSelector('region in (eu'), /missing "\)"/);
  assert.throws(() => parseSelector('=x'), /expected a label key/);
});
