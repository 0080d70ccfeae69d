import assert from 'node:assert/strict';
import { test } from 'node:test';
import { memoryReport, reportMemoryOnSignal } from './memory-report.js';

test('memory-report-splits-rss-and-names-the-heap-spaces', () => {
  const line = memoryReport();
  assert.match(line, /^memory MiB: rss=\d+\.\d anon=\d+\.\d file=\d+\.\d heap=/);
  assert.match(line, /undici=(true|false)/);
  assert.match(line, /\| .*old=\d+\.\d\/\d+\.\d/);
  assert.doesNotMatch(line, /NaN/);
});

test('memory-report-is-off-unless-asked-for', () => {
  const before = process.listenerCount('SIGUSR2');
  assert.equal(reportMemoryOnSignal({}), false);
  assert.equal(process.listenerCount('SIGUSR2'), before);
});
