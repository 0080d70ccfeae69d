// Golden tests of `flotilla watch` against the hub's real HTTP API (startHttpApi over a
// FleetStatus that changes while watched): the printed lines, and the exit code on
// Ctrl-C (abort), when the hub ends the stream, and for a bad selector.
import assert from 'node:assert/strict';
import test from 'node:test';
import { silentLogger, sleep } from '@flotilla/common';
import { startHttpApi } from '../api/http.js';
import type { RunningHttpApi } from '../api/http.js';
import { FleetStatus } from '../status/fleet-status.js';
import { runCli } from './main.js';
import { watchCommand } from './wait.js';
import { captureIo } from './testing.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const REV = '3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39';

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; !cond(); i++) {
    if (i > 500) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function hub(): Promise<{ status: FleetStatus; api: RunningHttpApi; url: string }> {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  status.setFleet(
    ['edge-1', 'edge-2', 'lab-1'].map((name) => ({
      name,
      labels: { env: name.startsWith('edge') ? 'prod' : 'dev' },
      desired: { revision: REV, digest: 'sha256:d1' },
    })),
  );
  const api = await startHttpApi('127.0.0.1', 0, {
    status,
    sources: { sources: () => [] },
    readiness: { check: () => ({ ready: true, reasons: [] }) },
    logger: silentLogger(),
  });
  return { status, api, url: `http://127.0.0.1:${api.port}` };
}

const hello = (cluster: string, appliedDigest: string) => ({
  cluster,
  agentVersion: '1.4.0',
  appliedDigest,
  appliedRevision: REV,
  protocolVersion: 1,
});

const T = '2026-11-26T12:00:00.000Z';
const GOLDEN_SNAPSHOT = `${T}  edge-1  Pending  connected=false  applied=<none>  agent has never connected
${T}  edge-2  Pending  connected=false  applied=<none>  agent has never connected
`;
const GOLDEN_CHANGES = `${T}  edge-1  Ready  connected=true  applied=3f2a9c1d8e7b
${T}  edge-2  Progressing  connected=true  applied=<none>  applying revision 3f2a9c1d8e7b
`;

test('watch-prints-the-snapshot-then-each-change-and-exits-0-on-abort', async () => {
  const { status, api, url } = await hub();
  const t = captureIo();
  const abort = new AbortController();
  try {
    const watching = watchCommand(
      ['-l', 'env=prod', '--hub-url', url],
      t.cli,
      fetch,
      abort.signal,
      () => NOW,
    );
    await until(() => t.out.stdout === GOLDEN_SNAPSHOT, 'the snapshot of the selected clusters');
    status.connected('edge-1', 's1', hello('edge-1', 'sha256:d1'));
    await until(() => t.out.stdout.split('\n').length === 4, 'edge-1 changed');
    status.connected('lab-1', 's2', hello('lab-1', 'sha256:d1'));
    status.connected('edge-2', 's3', hello('edge-2', ''));
    await until(() => t.out.stdout.split('\n').length === 5, 'edge-2 changed');
    abort.abort();
    assert.equal(await watching, 0, 'Ctrl-C is a normal end');
    assert.equal(t.out.stdout, GOLDEN_SNAPSHOT + GOLDEN_CHANGES, 'lab-1 (env=dev) is not shown');
    assert.equal(t.out.stderr, '');
  } finally {
    await api.stop();
  }
});

test('watch-exits-1-when-the-hub-ends-the-stream', async () => {
  const { api, url } = await hub();
  const t = captureIo();
  const watching = watchCommand(['--hub-url', url], t.cli, fetch, undefined, () => NOW);
  await until(() => t.out.stdout.split('\n').length === 4, 'the snapshot');
  await api.stop();
  assert.equal(await watching, 1);
  assert.match(t.out.stderr, /^the hub ended the watch stream/);
});

test('watch-with-a-bad-selector-or-no-hub-exits-with-a-clear-error', async () => {
  const bad = captureIo();
  assert.equal(
    await runCli(['watch', '-l', 'env in (', '--hub-url', 'http://127.0.0.1:9'], bad.cli),
    2,
  );
  assert.match(bad.out.stderr, /^flotilla watch: -l: /);
  assert.match(bad.out.stderr, /Run "flotilla watch --help" for usage/);
  const down = captureIo();
  const { api, url } = await hub();
  await api.stop();
  assert.equal(await runCli(['watch', '--hub-url', url], down.cli), 1);
  assert.match(down.out.stderr, /^flotilla watch: .*hub at http:\/\/127\.0\.0\.1:\d+/);
});
