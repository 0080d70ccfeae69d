import assert from 'node:assert/strict';
import test from 'node:test';
import { renderedWith } from './rendered-with.js';

const clusters = (...names: string[]) => new Map(names.map((n) => [n, {}]));

test('a-cluster-takes-the-version-of-the-first-source-declaring-it', () => {
  const of = renderedWith([
    { clusters: clusters('a', 'b'), capabilitiesVersion: 3 },
    { clusters: clusters('b', 'c'), capabilitiesVersion: 7 },
  ]);
  assert.equal(of('a'), 3);
  assert.equal(of('b'), 3, 'the hub serves b from the first source');
  assert.equal(of('c'), 7);
});

test('an-undeclared-cluster-waits-for-every-source-including-one-never-rendered', () => {
  assert.equal(renderedWith([{ clusters: clusters('a'), capabilitiesVersion: 5 }])('x'), 5);
  const of = renderedWith([
    { clusters: clusters('a'), capabilitiesVersion: 5 },
    { clusters: undefined, capabilitiesVersion: undefined },
  ]);
  assert.equal(of('x'), -1);
  assert.equal(of('a'), 5);
});
