// Sums the node:test summaries of every package in turbo logs (TAP "# pass N" on Node 20,
// "ℹ pass N" on Node 24) and prints one closing line. Exits non-zero when the run failed,
// a test failed, or no test ran at all. Failed tests are listed with their location and the
// first lines of their error just above the closing line, where the tail of a CI log shows
// them.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

const MAX_LISTED = 20;
const ERROR_LINES = 8;
const [, , turboRc = '0', seconds = '?', ...logFiles] = process.argv;
const totals = { pass: 0, fail: 0, skipped: 0, cancelled: 0 };
const failures = [];

// TAP (Node 20): "not ok N - name" then a YAML block up to "..."; suites whose only
// failure is their subtests' are left out (the subtests are listed).
function tapFailures(run, pkg, lines) {
  for (let i = 0; i < lines.length; i++) {
    const m = /^\s*not ok \d+ - (.*)$/.exec(lines[i]);
    if (!m) continue;
    const block = [];
    for (let j = i + 1; j < lines.length && !/^\s*\.\.\.\s*$/.test(lines[j]); j++) block.push(lines[j]);
    if (block.some((l) => /failureType: 'subtestsFailed'/.test(l))) continue;
    const location = block.map((l) => /^\s*location: '(.*)'$/.exec(l)?.[1]).find(Boolean) ?? '';
    const at = block.findIndex((l) => /^\s*error: /.test(l));
    const error = at < 0 ? [] : block.slice(at).map((l) => l.trim()).filter(Boolean).slice(0, ERROR_LINES);
    failures.push({ run, pkg, name: m[1], location, error });
  }
}

// Spec reporter (Node 24): the "✖ failing tests:" section at the end of each package's run.
function specFailures(run, pkg, lines) {
  const start = lines.findIndex((l) => /^✖ failing tests:/.test(l.trim()));
  if (start < 0) return;
  let current;
  for (const line of lines.slice(start + 1)) {
    const t = line.trim();
    const at = /^test at (.*)$/.exec(t);
    if (at) {
      current = { run, pkg, name: '', location: at[1], error: [] };
      failures.push(current);
    } else if (current && !current.name && t.startsWith('✖ ')) current.name = t.slice(2);
    else if (current && t && current.error.length < ERROR_LINES) current.error.push(t);
  }
}

console.log('\nflotilla test summary');
for (const file of logFiles) {
  const run = basename(file, '.log');
  const perPackage = new Map();
  const linesOf = new Map();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const own = /^(@flotilla\/[\w-]+):test: (.*)$/.exec(line);
    if (own) {
      if (!linesOf.has(own[1])) linesOf.set(own[1], []);
      linesOf.get(own[1]).push(own[2]);
    }
    const m = /^(@flotilla\/[\w-]+):test: (?:#|ℹ) (pass|fail|skipped|cancelled) (\d+)\s*$/.exec(line);
    if (!m) continue;
    const [, pkg, kind, n] = m;
    totals[kind] += Number(n);
    const row = perPackage.get(pkg) ?? { pass: 0, fail: 0, skipped: 0, cancelled: 0 };
    row[kind] += Number(n);
    perPackage.set(pkg, row);
  }
  for (const [pkg, lines] of linesOf) {
    tapFailures(run, pkg, lines);
    specFailures(run, pkg, lines);
  }
  console.log(`  ${run}:`);
  for (const [pkg, r] of perPackage) {
    console.log(`    ${pkg.padEnd(30)} ${r.pass} passed, ${r.fail + r.cancelled} failed, ${r.skipped} skipped`);
  }
}
if (failures.length > 0) {
  console.log(`  failed tests (${failures.length}${failures.length > MAX_LISTED ? `, first ${MAX_LISTED}` : ''}):`);
  for (const f of failures.slice(0, MAX_LISTED)) {
    console.log(`    ✖ [${f.run}] ${f.pkg} › ${f.name}${f.location ? `  (${f.location})` : ''}`);
    for (const l of f.error) console.log(`        ${l.slice(0, 300)}`);
  }
}
console.log(`  total time ${seconds} s; exit code ${turboRc}`);
const failed = totals.fail + totals.cancelled;
const ran = totals.pass + failed;
if (ran === 0) console.log('no test ran: that is a failure');
console.log(`${totals.pass} passed, ${failed} failed, ${totals.skipped} skipped`);
process.exit(turboRc !== '0' || ran === 0 || failed > 0 ? 1 : 0);
