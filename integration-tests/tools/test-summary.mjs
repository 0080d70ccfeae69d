// Sums the node:test summaries of every package in turbo logs (TAP "# pass N" on Node 20,
// "ℹ pass N" on Node 24) and prints one closing line. Exits non-zero when the run failed,
// a test failed, or no test ran at all.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const [, , turboRc = '0', seconds = '?', ...logFiles] = process.argv;
const totals = { pass: 0, fail: 0, skipped: 0, cancelled: 0 };
console.log('\nflotilla test summary');
for (const file of logFiles) {
  const perPackage = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(@flotilla\/[\w-]+):test: (?:#|ℹ) (pass|fail|skipped|cancelled) (\d+)\s*$/.exec(line);
    if (!m) continue;
    const [, pkg, kind, n] = m;
    totals[kind] += Number(n);
    const row = perPackage.get(pkg) ?? { pass: 0, fail: 0, skipped: 0, cancelled: 0 };
    row[kind] += Number(n);
    perPackage.set(pkg, row);
  }
  console.log(`  ${basename(file, '.log')}:`);
  for (const [pkg, r] of perPackage) {
    console.log(`    ${pkg.padEnd(30)} ${r.pass} passed, ${r.fail + r.cancelled} failed, ${r.skipped} skipped`);
  }
}
console.log(`  total time ${seconds} s; exit code ${turboRc}`);
const failed = totals.fail + totals.cancelled;
const ran = totals.pass + failed;
if (ran === 0) console.log('no test ran: that is a failure');
console.log(`${totals.pass} passed, ${failed} failed, ${totals.skipped} skipped`);
process.exit(turboRc !== '0' || ran === 0 || failed > 0 ? 1 : 0);
