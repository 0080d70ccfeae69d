// The fuzz program: every parser of outside input under fast-check, for as many iterations
// as asked (default 1,000,000 in all, spread evenly), seeded so a crash can be replayed.
//   node hub/dist/fuzz/main.js [--iterations N] [--seed S] [--target NAME]
// Prints a table (target, iterations, crashes, seconds) and exits 1 when anything crashed.
import { parseArgs } from 'node:util';
import { runTarget } from './run.js';
import type { FuzzResult } from './run.js';
import { fuzzTargets } from './targets.js';

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    target: { type: 'string' },
    chunk: { type: 'string', default: '20000' },
  },
});
const total = Number(values.iterations);
const seed = Number(values.seed);
const chunk = Number(values.chunk);
if (!Number.isInteger(total) || total <= 0 || !Number.isInteger(seed) || !(chunk > 0)) {
  console.error('usage: fuzz [--iterations N>0] [--seed INTEGER] [--target NAME] [--chunk N]');
  process.exit(2);
}
const targets = fuzzTargets().filter((t) => !values.target || t.name === values.target);
if (targets.length === 0) {
  console.error(
    `no target named ${values.target}; targets: ${fuzzTargets()
      .map((t) => t.name)
      .join(', ')}`,
  );
  process.exit(2);
}
const per = Math.ceil(total / targets.length);
console.log(`fuzzing ${targets.length} targets, ${per} iterations each, seed ${seed}`);
const results: FuzzResult[] = [];
for (const t of targets) {
  // In chunks, each from its own seed, so progress shows and one slow input does not hide.
  let done = 0;
  let ms = 0;
  let crash: FuzzResult['crash'];
  for (let i = 0; done < per && !crash; i++) {
    const r = runTarget(t, Math.min(chunk, per - done), seed + i);
    done += r.iterations;
    ms += r.ms;
    crash = r.crash;
    process.stdout.write(`\r  ${t.name}: ${done}/${per}`);
  }
  process.stdout.write('\n');
  results.push({
    name: t.name,
    covers: t.covers,
    iterations: done,
    ms,
    ...(crash ? { crash } : {}),
  });
  if (crash)
    console.log(
      `  CRASH in ${t.name}: ${crash.error}\n  input: ${crash.input}\n  replay: --target ${t.name} --seed ${crash.seed} (path ${crash.path})`,
    );
}
console.log(
  '\n| target | covers | iterations | crashes | seconds |\n| --- | --- | --- | --- | --- |',
);
for (const r of results)
  console.log(
    `| ${r.name} | ${r.covers} | ${r.iterations} | ${r.crash ? 1 : 0} | ${(r.ms / 1000).toFixed(1)} |`,
  );
const iterations = results.reduce((n, r) => n + r.iterations, 0);
const crashes = results.filter((r) => r.crash).length;
console.log(`\n${iterations} iterations in all, ${crashes} crashes, seed ${seed}`);
process.exit(crashes > 0 ? 1 : 0);
