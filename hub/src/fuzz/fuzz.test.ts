// The short, seeded run of every fuzz target (the fuzz program runs the long one). A crash
// here names the target, the shrunk input and the seed to replay it with the program.
import assert from 'node:assert/strict';
import test from 'node:test';
import { runTarget } from './run.js';
import { FuzzCrash, fuzzTargets } from './targets.js';

const SEED = 20261203;
const RUNS = 400;

for (const target of fuzzTargets()) {
  test(`fuzz-${target.name}-refuses-hostile-input-with-its-own-errors`, () => {
    const r = runTarget(target, RUNS, SEED);
    assert.equal(r.iterations, RUNS);
    assert.equal(r.crash, undefined, r.crash && `${r.crash.error}\ninput: ${r.crash.input}`);
  });
}

test('a-target-that-crashes-is-reported-with-its-shrunk-input', () => {
  const [first] = fuzzTargets();
  assert.ok(first);
  const r = runTarget(
    {
      ...first,
      check: (input: never) => {
        if (JSON.stringify(input).length > 3) throw new FuzzCrash('too long');
      },
    },
    RUNS,
    SEED,
  );
  assert.ok(r.crash, 'the crash is found');
  assert.match(r.crash.error, /too long/);
  assert.ok(r.crash.input.length <= 12, `shrunk: ${r.crash.input}`);
});
