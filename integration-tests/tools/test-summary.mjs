// Sums the node:test summaries of every package in a turbo log and prints one closing
// line. Exits non-zero when a test failed or when no test ran at all.
import { readFileSync } from 'node:fs';

const [, , logFile, turboRc = '0', seconds = '?'] = process.argv;
const text = readFileSync(logFile, 'utf8');
const totals = { pass: 0, fail: 0, skipped: 0, cancelled: 0 };
const perPackage = new Map();
for (const line of text.split('\n')) {
  const m = /^(@flotilla\/[\w-]+):test: # (pass|fail|skipped|cancelled) (\d+)\s*$/.exec(line);
  if (!m) continue;
  const [, pkg, kind, n] = m;
  totals[kind] += Number(n);
  const row = perPackage.get(pkg) ?? { pass: 0, fail: 0, skipped: 0, cancelled: 0 };
  row[kind] += Number(n);
  perPackage.set(pkg, row);
}
console.log('\nflotilla test summary');
for (const [pkg, r] of perPackage) {
  console.log(`  ${pkg.padEnd(30)} ${r.pass} passed, ${r.fail + r.cancelled} failed, ${r.skipped} skipped`);
}
console.log(`  total time ${seconds} s; turbo exit code ${turboRc}`);
const ran = totals.pass + totals.fail + totals.cancelled;
if (ran === 0) console.log('no test ran: that is a failure');
console.log(`${totals.pass} passed, ${totals.fail + totals.cancelled} failed, ${totals.skipped} skipped`);
process.exit(ran === 0 || totals.fail + totals.cancelled > 0 ? 1 : 0);
