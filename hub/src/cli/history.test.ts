// Golden tests of `flotilla history` against the hub's real HTTP API (startHttpApi over a
// HistoryLog holding applies, drift, health and session events): the printed rows, the
// query each flag sends, and the errors a user sees for bad flags or a bad cluster.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import test from 'node:test';
import type { EventKind, FlotillaEvent } from '@flotilla/common';
import { EVENT_TYPES, UnavailableError, createEvent, silentLogger } from '@flotilla/common';
import { startHttpApi } from '../api/http.js';
import type { RunningHttpApi } from '../api/http.js';
import type { Degradation } from '../api/types.js';
import { HistoryLog } from '../history/history-log.js';
import type { HistoryEntry } from '../history/history-log.js';
import { FleetStatus } from '../status/fleet-status.js';
import { sessionEvent } from '../status/session-events.js';
import { appliedEvent, driftEvent } from '../status/testing.js';
import { HISTORY_USAGE, historyCommand } from './history.js';
import { runCli } from './main.js';
import { HubError } from './hub-client.js';
import type { Fetch } from './hub-client.js';
import { UsageError } from './io.js';
import { captureIo } from './testing.js';

const NOW = Date.parse('2026-11-26T12:00:00Z');
const REV = '3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a39';
const OLD = '0123456789abcdef0123456789abcdef01234567';
const at = (iso: string) => new Date(`2026-11-${iso}Z`);

function session(id: string, agentVersion: string, reason = '') {
  return {
    session: id,
    agentVersion,
    reason,
    hub: 'hub-a',
    appliedRevision: '',
    appliedDigest: '',
  };
}

// A hub whose history holds one day of a small fleet, at a fixed NOW.
async function hub(
  withHistory = true,
  degraded: Degradation[] = [],
): Promise<{ api: RunningHttpApi; url: string }> {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  status.setFleet(
    ['edge-1', 'edge-2', 'lab-1'].map((name) => ({
      name,
      labels: {},
      desired: { revision: REV, digest: 'sha256:d1' },
    })),
  );
  const history = new HistoryLog({ retentionMs: 7 * 86_400_000, now: () => NOW });
  const kindOf = (type: string) =>
    (Object.keys(EVENT_TYPES) as EventKind[]).find((k) => EVENT_TYPES[k] === type) as EventKind;
  const add = (e: FlotillaEvent) => assert.ok(history.add(kindOf(e.type), e), e.type);
  add(appliedEvent('lab-1', OLD, 'sha256:d0', { app: 'sha256:a0' }, at('24T09:00:00')));
  add(
    sessionEvent(
      'edge-1',
      'connected',
      { ...session('5e551052-aaaa-4bbb-8ccc-123456789abc', '1.4.0'), appliedRevision: REV },
      at('26T11:00:00'),
    ),
  );
  add(
    appliedEvent(
      'edge-1',
      REV,
      'sha256:d1',
      { app: 'sha256:a1', monitoring: 'sha256:m1', ingress: 'sha256:i1', dns: 'sha256:n1' },
      at('26T11:01:00'),
    ),
  );
  add(
    appliedEvent('edge-2', REV, 'sha256:d1', { app: 'sha256:a1' }, at('26T11:30:00'), {
      result: 'failed',
      failures: { app: ['Deployment/apps/web: field is immutable'] },
    }),
  );
  add(driftEvent('edge-1', 'app', at('26T11:45:00'), { revision: REV }));
  add(driftEvent('edge-1', 'app', at('26T11:46:00'), { revision: REV, kind: 'drift-corrected' }));
  add(
    createEvent(
      'edge-2',
      'health-changed',
      { bundle: 'app', health: 'Degraded', message: 'Deployment/apps/web: 0/3 ready' },
      at('26T11:50:00'),
    ),
  );
  add(
    sessionEvent(
      'edge-2',
      'disconnected',
      session('0ld5e55i0n', '1.3.9', 'nothing received for 30000 ms'),
      at('26T11:55:00'),
    ),
  );
  const api = await startHttpApi('127.0.0.1', 0, {
    status,
    ...(withHistory ? { history } : {}),
    sources: { sources: () => [] },
    readiness: { check: () => ({ ready: true, reasons: [], degraded }) },
    logger: silentLogger(),
    now: () => NOW,
  });
  return { api, url: `http://127.0.0.1:${api.port}` };
}

// The real fetch, recording each query the command sends.
function recording(seen: string[]): Fetch {
  return (url, init) => {
    const u = new URL(url);
    seen.push(u.pathname + u.search);
    return fetch(url, init);
  };
}

const GOLDEN_TABLE = `TIME      CLUSTER   KIND              REVISION       RESULT     MESSAGE
5m ago    edge-2    disconnected      -              -          session 0ld5e55i ended: nothing received for 30000 ms
10m ago   edge-2    health-changed    -              Degraded   app: Deployment/apps/web: 0/3 ready
14m ago   edge-1    drift-corrected   3f2a9c1d8e7b   -          1 object corrected: Deployment/apps/web
15m ago   edge-1    drift-detected    3f2a9c1d8e7b   -          1 object drifted: Deployment/apps/web
30m ago   edge-2    apply-failed      3f2a9c1d8e7b   failed     1 bundle: app; Deployment/apps/web: field is immutable
59m ago   edge-1    applied           3f2a9c1d8e7b   applied    4 bundles: app, monitoring, ingress (+1 more)
60m ago   edge-1    connected         3f2a9c1d8e7b   -          agent 1.4.0 connected, session 5e551052
2d ago    lab-1     applied           0123456789ab   applied    1 bundle: app
`;

const GOLDEN_WIDE_EDGE_1 = `TIME                                 CLUSTER   KIND              REVISION       DIGEST   RESULT    MESSAGE
2026-11-26T11:46:00.000Z (14m ago)   edge-1    drift-corrected   3f2a9c1d8e7b   -        -         1 object corrected: Deployment/apps/web
2026-11-26T11:45:00.000Z (15m ago)   edge-1    drift-detected    3f2a9c1d8e7b   -        -         1 object drifted: Deployment/apps/web
2026-11-26T11:01:00.000Z (59m ago)   edge-1    applied           3f2a9c1d8e7b   d1       applied   4 bundles: app, monitoring, ingress (+1 more)
2026-11-26T11:00:00.000Z (60m ago)   edge-1    connected         3f2a9c1d8e7b   -        -         agent 1.4.0 connected, session 5e551052
`;

test('history-prints-every-kind-newest-first-golden', async () => {
  const { api, url } = await hub();
  try {
    const t = captureIo();
    assert.equal(await historyCommand(['--hub-url', url], t.cli, fetch, () => NOW), 0);
    assert.equal(t.out.stdout, GOLDEN_TABLE);
    assert.equal(t.out.stderr, '');
    const w = captureIo();
    const args = ['--cluster', 'edge-1', '-o', 'wide'];
    assert.equal(await historyCommand([...args, '--hub-url', url], w.cli, fetch, () => NOW), 0);
    assert.equal(w.out.stdout, GOLDEN_WIDE_EDGE_1);
  } finally {
    await api.stop();
  }
});

test('history-sends-each-flag-as-a-filter-and-json-carries-the-session', async () => {
  const { api, url } = await hub();
  const seen: string[] = [];
  const run = async (...argv: string[]) => {
    const t = captureIo();
    assert.equal(await historyCommand(argv, t.cli, recording(seen), () => NOW), 0);
    return t.out.stdout;
  };
  try {
    const json = await run(
      ...['--cluster', 'edge-2', '--kind', 'connected,disconnected', '--since', '24h'],
      ...['--limit', '5', '-o', 'json', '--hub-url', url],
    );
    assert.equal(
      seen.at(-1),
      '/api/v1/history?cluster=edge-2&kind=connected%2Cdisconnected&since=24h&limit=5',
    );
    const entries = (JSON.parse(json) as { entries: HistoryEntry[] }).entries;
    assert.deepEqual(
      entries.map((e) => [e.kind, e.session]),
      [
        [
          'disconnected',
          {
            id: '0ld5e55i0n',
            agentVersion: '1.3.9',
            reason: 'nothing received for 30000 ms',
            hub: 'hub-a',
          },
        ],
      ],
    );
    const drift = await run(
      '--kind',
      'drift-detected',
      '--kind',
      'drift-corrected',
      '--hub-url',
      url,
    );
    assert.equal(seen.at(-1), '/api/v1/history?kind=drift-detected%2Cdrift-corrected');
    assert.match(
      drift,
      /^TIME.*\n14m ago +edge-1 +drift-corrected .*\n15m ago +edge-1 +drift-detected .*\n$/,
    );
    const digest = await run('--bundle-digest', 'sha256:m1', '--hub-url', url);
    assert.equal(seen.at(-1), '/api/v1/history?bundleDigest=sha256%3Am1');
    assert.match(digest, /^TIME.*\n59m ago +edge-1 +applied .*\n$/);
    const older = await run('--revision', OLD.slice(0, 7), '--bundle', 'app', '--hub-url', url);
    assert.equal(seen.at(-1), `/api/v1/history?bundle=app&revision=${OLD.slice(0, 7)}`);
    assert.match(older, /^TIME.*\n2d ago +lab-1 +applied .*\n$/);
    const until = await run('--until', '2026-11-26T11:00:00Z', '-o', 'yaml', '--hub-url', url);
    assert.match(until, /^entries:\n {2}- id: 5e551052-aaaa-4bbb-8ccc-123456789abc\.connected\n/);
    assert.equal((until.match(/^ {2}- id:/gm) ?? []).length, 2, 'the session start and lab-1');
    assert.equal(
      await run('--since', '1m', '--hub-url', url),
      'No history entries found.\n',
      'nothing in the last minute',
    );
  } finally {
    await api.stop();
  }
});

test('history-bad-flags-are-usage-errors-before-any-request', async () => {
  const seen: string[] = [];
  const hubUrl = ['--hub-url', 'http://127.0.0.1:9'];
  for (const [argv, message] of [
    [['--kind', 'exploded'], /^--kind: unknown event kind "exploded" \(use applied, /],
    [['--revision', 'xyz'], /^--revision: "xyz" is not a commit SHA/],
    [['--limit', '0'], /^--limit: must be an integer from 1 to 10000, got "0"/],
    [['--since', 'yesterday'], /^--since: "yesterday" is neither a duration/],
    [['--since', '1h', '--until', '2h'], /^--since 1h is later than --until 2h$/],
    [['-o', 'xml'], /^-o: unknown output format "xml"/],
    [['edge-1'], /^unexpected arguments: edge-1 \(use --cluster NAME\)$/],
  ] as const) {
    await assert.rejects(
      historyCommand([...argv, ...hubUrl], captureIo().cli, recording(seen), () => NOW),
      (err: Error) => err instanceof UsageError && message.test(err.message),
      argv.join(' '),
    );
  }
  assert.deepEqual(seen, [], 'no request for a bad command line');
  const help = captureIo();
  assert.equal(await historyCommand(['--help'], help.cli), 0);
  assert.equal(help.out.stdout, HISTORY_USAGE);
  // Through the CLI's dispatcher: a usage error is exit code 2 with the message.
  const bad = captureIo();
  assert.equal(await runCli(['history', '--kind', 'exploded', ...hubUrl], bad.cli), 2);
  assert.match(bad.out.stderr, /^flotilla history: --kind: unknown event kind "exploded"/);
});

test('history-shows-the-hubs-error-for-an-unknown-cluster-or-no-history', async () => {
  const { api, url } = await hub();
  const bare = await hub(false);
  try {
    await assert.rejects(
      historyCommand(['--cluster', 'nope', '--hub-url', url], captureIo().cli),
      (err: Error) =>
        err instanceof HubError &&
        err.message === 'hub answered 404 NOT_FOUND: cluster "nope" not found',
    );
    await assert.rejects(
      historyCommand(['--hub-url', bare.url], captureIo().cli),
      (err: Error) => err instanceof HubError && err.status === 503 && err.code === 'UNAVAILABLE',
    );
  } finally {
    await api.stop();
    await bare.api.stop();
  }
  // A port nothing listens on (a fresh one: the stopped hub's may have pooled sockets).
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const closed = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise((resolve) => probe.close(resolve));
  await assert.rejects(
    historyCommand(['--hub-url', closed], captureIo().cli),
    (err: Error) => err instanceof UnavailableError && err.message.startsWith(`hub at ${closed}`),
    'no hub there',
  );
});

test('a-hub-still-replaying-its-history-marks-answers-partial-and-the-cli-warns-on-stderr', async () => {
  const loading =
    'history loading: the events of the retention period are being replayed (8 entries so far); until then history shows only part of them';
  const { api, url } = await hub(true, [
    { reason: 'history', since: at('26T12:00:00').toISOString(), message: loading },
  ]);
  try {
    const raw = (await (await fetch(`${url}/api/v1/history`)).json()) as {
      entries: unknown[];
      partial?: string;
    };
    assert.equal(raw.partial, loading);
    assert.equal(raw.entries.length, 8);
    const t = captureIo();
    assert.equal(
      await historyCommand(['-o', 'json', '--hub-url', url], t.cli, fetch, () => NOW),
      0,
    );
    assert.equal(t.out.stderr, `warning: ${loading}\n`);
    assert.ok((JSON.parse(t.out.stdout) as { entries: unknown[] }).entries.length > 0);
  } finally {
    await api.stop();
  }
  // Once replayed, answers are whole: no mark, no warning.
  const whole = await hub();
  try {
    const t = captureIo();
    assert.equal(await historyCommand(['--hub-url', whole.url], t.cli, fetch, () => NOW), 0);
    assert.equal(t.out.stderr, '');
    const raw = (await (await fetch(`${whole.url}/api/v1/history`)).json()) as object;
    assert.equal('partial' in raw, false);
  } finally {
    await whole.api.stop();
  }
});
