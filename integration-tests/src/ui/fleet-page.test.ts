// The hub's fleet page in a real browser (Debian's Chromium, driven by playwright-core):
// the real HTTP API over a FleetStatus model, the page's own script and the /api/v1/watch
// stream. It must show the fleet, filter by selector, follow status changes without a
// reload, survive the hub going away, render hostile agent data as text, and on a hub
// that requires credentials ask for an API token.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { silentLogger } from '@flotilla/common';
import { FleetStatus, IdentityAuthority, ReadAccess, startHttpApi } from '@flotilla/hub';
import { requirePrerequisite, waitFor } from '@flotilla/test-env';

const CHROMIUM = '/usr/bin/chromium';
const skip = await requirePrerequisite(
  'chromium',
  () => existsSync(CHROMIUM) || `${CHROMIUM} not found`,
  'run integration-tests/tools/prereqs.sh as root (it runs apt-get install -y chromium)',
);

const HOSTILE = '<img src=x onerror=window.__xss=1>';
const REV = 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678';
const DIGEST = 'sha256:d1';

type HttpDeps = Parameters<typeof startHttpApi>[2];
type HistoryQuery = Parameters<NonNullable<HttpDeps['history']>['query']>[0];
type HistoryEntry = ReturnType<NonNullable<HttpDeps['history']>['query']>[number];

function hello(cluster: string, appliedDigest = '') {
  const appliedRevision = appliedDigest ? REV : '';
  return { cluster, agentVersion: '1.0.0', appliedDigest, appliedRevision, protocolVersion: 1 };
}

function entry(cluster: string, kind: HistoryEntry['kind'], extra: Partial<HistoryEntry>) {
  const time = new Date(Date.now() - 120_000);
  return {
    ...{ id: `${cluster}-${kind}`, time: time.toISOString(), timeMs: time.getTime(), cluster },
    ...{ kind, revision: REV, digest: DIGEST, result: '', message: '', bundles: ['podinfo'] },
    ...{ bundleDigests: [], drift: [] },
    ...extra,
  } as HistoryEntry;
}

// edge-eu Ready, edge-us Pending, lab-1 Failed with a hostile label value, message and drift.
function world(): HttpDeps {
  const status = new FleetStatus({ offlineAfterMs: 45_000, logger: silentLogger() });
  const desired = { revision: REV, digest: DIGEST, bundles: [{ name: 'podinfo', digest: 'b1' }] };
  status.setFleet([
    { name: 'edge-eu', labels: { env: 'prod', region: 'eu' }, desired },
    { name: 'edge-us', labels: { env: 'prod', region: 'us' }, desired },
    { name: 'lab-1', labels: { env: 'lab', note: HOSTILE }, desired },
  ]);
  status.connected('edge-eu', 's1', hello('edge-eu', DIGEST));
  status.connected('lab-1', 's2', hello('lab-1'));
  status.acked('lab-1', {
    ...{ generation: 1, digest: DIGEST, revision: REV, result: 'ACK_RESULT_FAILED' },
    ...{ message: HOSTILE, objectsApplied: 0, objectsFailed: 1 },
  });
  const drift = {
    ...{ bundle: 'podinfo', kind: 'Deployment', namespace: 'apps', name: 'podinfo' },
    ...{ fields: ['/spec/replicas', `/metadata/labels/${HOSTILE}`], changedBy: [HOSTILE] },
  };
  const entries = [
    entry('lab-1', 'drift-detected', { drift: [drift] }),
    entry('edge-eu', 'applied', { result: 'applied', message: 'applied 5 objects' }),
    entry('lab-1', 'apply-failed', { result: 'failed', message: HOSTILE }),
  ];
  const history = {
    query: (q: HistoryQuery) =>
      entries.filter(
        (e) =>
          (!q.cluster || e.cluster === q.cluster) && (!q.kinds?.length || q.kinds.includes(e.kind)),
      ),
  };
  const ready = { check: () => ({ ready: true, reasons: [] }) };
  return {
    status,
    history,
    sources: { sources: () => [] },
    readiness: ready,
    logger: silentLogger(),
  };
}

/** The cells' text of each row of a table body. */
function rows(page: Page, table: string): Promise<string[][]> {
  return page.$$eval(`#${table} tbody tr`, (trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
  );
}

async function clusterStates(page: Page): Promise<Record<string, string>> {
  return Object.fromEntries((await rows(page, 'clusters')).map((r) => [r[0], r[3]]));
}

let browser: Browser | undefined;
before(async () => {
  if (!skip) browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
});
after(async () => browser?.close());

/** A page on a fresh hub API; `problems` collects console errors and uncaught exceptions. */
async function open(deps: HttpDeps, clusters = 3) {
  const srv = await startHttpApi('127.0.0.1', 0, deps);
  const page = await (browser as Browser).newPage();
  const problems: string[] = [];
  // The browser logs every failed request; the tests cause some on purpose and expect them.
  const expected: RegExp[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected.some((re) => re.test(m.text()))) problems.push(m.text());
  });
  page.on('pageerror', (err) => problems.push(err.message));
  try {
    await page.goto(`http://127.0.0.1:${srv.port}/`);
    await waitFor(async () => (await rows(page, 'clusters')).length === clusters, {
      what: `the clusters table to list ${clusters} clusters`,
    });
  } catch (err) {
    await page.close();
    await srv.stop();
    throw new Error(`the page did not load: ${problems.join(' | ') || 'no page errors'}`, {
      cause: err,
    });
  }
  return { srv, page, problems, expected };
}

test(
  'fleet-page-shows-clusters-bundles-drift-and-hostile-text-as-text',
  { skip, timeout: 30_000 },
  async () => {
    const { srv, page, problems } = await open(world());
    try {
      assert.deepEqual(await clusterStates(page), {
        'edge-eu': 'Ready',
        'edge-us': 'Pending',
        'lab-1': 'Failed',
      });
      const lab = (await rows(page, 'clusters')).find((r) => r[0] === 'lab-1') ?? [];
      assert.equal(lab[1], `env=labnote=${HOSTILE}`);
      assert.equal(lab[4], REV.slice(0, 7));
      assert.equal(lab[7], HOSTILE);
      const counts = await page.$eval('#cluster-counts', (ul) => ul.textContent ?? '');
      assert.match(counts, /Ready\s*1/);
      assert.match(counts, /Failed\s*1/);
      await waitFor(async () => (await rows(page, 'bundles'))[0]?.[0] === 'podinfo', {
        what: 'the bundles table',
      });
      assert.equal((await rows(page, 'bundles'))[0]?.[1], '3');
      await waitFor(async () => (await rows(page, 'drift')).length === 1, { what: 'drift' });
      const [drift] = await rows(page, 'drift');
      assert.equal(drift?.[2], 'lab-1');
      assert.equal(drift?.[4], `/spec/replicas, /metadata/labels/${HOSTILE}`);
      assert.equal(drift?.[5], HOSTILE);

      await page.click('#clusters a >> text=lab-1');
      await waitFor(async () => (await rows(page, 'history')).length === 2, {
        what: "lab-1's history",
      });
      assert.equal(await page.$eval('#detail-title', (h) => h.textContent), 'Cluster lab-1');
      assert.equal((await rows(page, 'deployments'))[0]?.[0], 'podinfo');
      assert.deepEqual(
        (await rows(page, 'history')).map((r) => r[1]),
        ['drift-detected', 'apply-failed'],
      );
      assert.equal((await rows(page, 'history'))[1]?.[4], HOSTILE);

      // Shown as text everywhere, parsed as markup nowhere.
      assert.equal(await page.locator('img').count(), 0);
      assert.equal(await page.evaluate(() => (globalThis as { __xss?: unknown }).__xss), undefined);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      await srv.stop();
    }
  },
);

test(
  'fleet-page-shows-source-errors-and-failed-bundles-first',
  { skip, timeout: 30_000 },
  async () => {
    const deps = world();
    const status = deps.status as FleetStatus;
    const OLD = '0f0e0d0c0b0a09080706050403020100f0e0d0c0';
    const BROKEN = `bundles/web/manifests/cm.yaml:5: YAML: ${HOSTILE}`;
    const desired = { revision: REV, digest: DIGEST, bundles: [{ name: 'podinfo', digest: 'b1' }] };
    const failure = { bundle: 'web', revision: REV, message: BROKEN, servingRevision: OLD };
    status.setFleet([
      {
        name: 'edge-eu',
        labels: { env: 'prod', region: 'eu' },
        desired,
        renderFailures: [failure],
      },
      { name: 'edge-us', labels: { env: 'prod', region: 'us' }, desired },
      { name: 'lab-1', labels: { env: 'lab', note: HOSTILE }, desired },
    ]);
    deps.sources = {
      sources: () => [
        {
          ...{ name: 'fleet', url: 'https://git.example/fleet.git', branch: 'main' },
          ...{ revision: REV, lastFetched: new Date().toISOString(), renderedRevision: REV },
          error: 'hub at https://git.example is unavailable: connect ECONNREFUSED',
          renderErrors: [
            { bundle: 'web', clusters: ['edge-eu'], clusterCount: 1, message: BROKEN },
          ],
          renderErrorCount: 1,
        },
      ],
    };
    const { srv, page, problems } = await open(deps);
    try {
      const section = page.locator('#problems');
      await section.waitFor({ state: 'visible' });
      await waitFor(async () => (await rows(page, 'failed')).length === 2, {
        what: 'both failed deployments in "Needs attention"',
      });
      // Before everything else on the page.
      assert.equal(await page.$eval('main > section', (s) => s.id), 'problems');
      const items = await page.$$eval('#source-problems li', (lis) =>
        lis.map((li) => li.textContent ?? ''),
      );
      assert.deepEqual(items, [
        'Source fleet: hub at https://git.example is unavailable: connect ECONNREFUSED',
        `Bundle web failed to render at a1b2c3d (edge-eu): ${BROKEN}`,
      ]);
      assert.deepEqual(await rows(page, 'failed'), [
        ['podinfo', 'lab-1', 'apply failed'],
        ['web', 'edge-eu', `serving 0f0e0d0c0b0a; a1b2c3d4e5f6 failed to render: ${BROKEN}`],
      ]);
      assert.equal((await clusterStates(page))['edge-eu'], 'Failed');
      const eu = (await rows(page, 'clusters')).find((r) => r[0] === 'edge-eu') ?? [];
      assert.equal(
        eu[7],
        `bundle web: serving 0f0e0d0c0b0a; a1b2c3d4e5f6 failed to render: ${BROKEN}`,
      );

      // The deployment shows Failed in the cluster's detail too, and hostile text stays text.
      await page.click('#clusters a >> text=edge-eu');
      await waitFor(async () => (await rows(page, 'deployments')).length === 2, {
        what: "edge-eu's deployments",
      });
      assert.deepEqual(
        (await rows(page, 'deployments')).map((r) => [r[0], r[1]]),
        [
          ['podinfo', 'OutOfSync'],
          ['web', 'Failed'],
        ],
      );
      assert.equal(await page.locator('img').count(), 0);
      assert.equal(await page.evaluate(() => (globalThis as { __xss?: unknown }).__xss), undefined);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      await srv.stop();
    }
  },
);

test(
  'fleet-page-filters-by-selector-and-shows-the-apis-error',
  { skip, timeout: 30_000 },
  async () => {
    const { srv, page, problems, expected } = await open(world());
    try {
      await page.fill('#selector', 'env=prod');
      await page.press('#selector', 'Enter');
      await waitFor(async () => (await rows(page, 'clusters')).length === 2, {
        what: 'the selector to keep the 2 prod clusters',
      });
      assert.deepEqual(Object.keys(await clusterStates(page)), ['edge-eu', 'edge-us']);

      expected.push(/^Failed to load resource: the server responded with a status of 400/);
      const bad = 'env in (';
      const api = await fetch(
        `http://127.0.0.1:${srv.port}/api/v1/clusters?selector=${encodeURIComponent(bad)}`,
      );
      const { error } = (await api.json()) as { error: { message: string } };
      await page.fill('#selector', bad);
      await page.click('#filter button');
      const shown = page.locator('#selector-error');
      await shown.waitFor({ state: 'visible' });
      assert.equal(await shown.textContent(), `Selector: ${error.message}`);
      // The last good selection stays on the page.
      assert.deepEqual(Object.keys(await clusterStates(page)), ['edge-eu', 'edge-us']);

      await page.fill('#selector', '');
      await page.press('#selector', 'Enter');
      await waitFor(async () => (await rows(page, 'clusters')).length === 3, {
        what: 'an empty selector to show every cluster',
      });
      assert.equal(await shown.isVisible(), false);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      await srv.stop();
    }
  },
);

test(
  'fleet-page-follows-changes-live-and-reconnects-after-the-hub-goes-away',
  { skip, timeout: 30_000 },
  async () => {
    const deps = world();
    const status = deps.status as FleetStatus;
    const { srv, page, problems, expected } = await open(deps);
    let again: Awaited<ReturnType<typeof startHttpApi>> | undefined;
    try {
      // A marker a reload would wipe.
      await page.evaluate(() => ((globalThis as { __marker?: number }).__marker = 1));
      status.connected('edge-us', 's3', hello('edge-us', DIGEST));
      await waitFor(async () => (await clusterStates(page))['edge-us'] === 'Ready', {
        what: 'edge-us to turn Ready on the page',
      });

      // The cut stream, and the retries while the hub is away.
      expected.push(
        /^Failed to load resource: net::ERR_(INCOMPLETE_CHUNKED_ENCODING|CONNECTION_REFUSED)/,
      );
      await srv.stop();
      const banner = page.locator('#banner');
      await banner.waitFor({ state: 'visible' });
      assert.match((await banner.textContent()) ?? '', /disconnected.*retrying/i);
      // What changes while the page is cut off shows once it is back.
      status.disconnected('edge-eu', 's1', 'agent ended the stream');
      again = await startHttpApi('127.0.0.1', srv.port, deps);
      await banner.waitFor({ state: 'hidden', timeout: 20_000 });
      const connected = async (name: string) =>
        (await rows(page, 'clusters')).find((r) => r[0] === name)?.[2];
      await waitFor(async () => (await connected('edge-eu')) === 'no', {
        what: 'edge-eu to show its disconnect after the reconnect',
      });
      assert.equal(await page.evaluate(() => (globalThis as { __marker?: number }).__marker), 1);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      await again?.stop();
      await srv.stop();
    }
  },
);

test(
  'fleet-page-shows-a-thousand-clusters-and-updates-one',
  { skip, timeout: 30_000 },
  async () => {
    const deps = world();
    const status = deps.status as FleetStatus;
    const desired = { revision: REV, digest: DIGEST, bundles: [{ name: 'podinfo', digest: 'b1' }] };
    const names = Array.from({ length: 1000 }, (_, i) => `site-${String(i).padStart(4, '0')}`);
    status.setFleet(names.map((name, i) => ({ name, labels: { shard: String(i % 10) }, desired })));
    // The world's clusters leave the fleet: edge-us, which no agent ever used, is gone; the
    // two that agents used stay, as not declared.
    const { srv, page, problems } = await open(deps, 1002);
    try {
      const counts = await page.$eval('#cluster-counts', (ul) => ul.textContent ?? '');
      assert.match(counts, /Pending\s*1000/);
      status.connected('site-0500', 's9', hello('site-0500', DIGEST));
      await waitFor(async () => (await clusterStates(page))['site-0500'] === 'Ready', {
        what: 'site-0500 to turn Ready among 1,000 rows',
      });
      assert.equal((await rows(page, 'clusters')).length, 1002);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      await srv.stop();
    }
  },
);

test(
  'fleet-page-asks-for-a-token-refuses-a-bad-one-and-follows-the-fleet-with-a-good-one',
  { skip, timeout: 30_000 },
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'flotilla-ui-identity-'));
    const authority = new IdentityAuthority({
      stateDir: dir,
      hosts: ['127.0.0.1'],
      logger: silentLogger(),
    });
    await authority.start();
    const { token } = await authority.apiTokens.create('browser');
    const deps = { ...world(), access: new ReadAccess(authority, silentLogger()) };
    const status = deps.status as FleetStatus;
    const srv = await startHttpApi('127.0.0.1', 0, deps);
    const page = await (browser as Browser).newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(m.text());
    });
    page.on('pageerror', (err) => problems.push(err.message));
    const url = `http://127.0.0.1:${srv.port}`;
    try {
      await page.goto(`${url}/`);
      const form = page.locator('#auth');
      await form.waitFor({ state: 'visible' });
      assert.equal(await page.locator('#connection').textContent(), 'Token needed');
      assert.equal((await rows(page, 'clusters')).length, 0, 'nothing shown without a token');

      const bad = `flt_${'A'.repeat(43)}`;
      const api = await fetch(`${url}/api/v1/clusters`, {
        headers: { authorization: `Bearer ${bad}` },
      });
      const { error } = (await api.json()) as { error: { message: string } };
      await page.fill('#token', bad);
      await page.click('#auth button');
      // The form first says why it is there; then the hub's reason for refusing the token.
      const refused = page.locator('#auth-error');
      await waitFor(async () => (await refused.textContent()) === error.message, {
        what: `the form to show "${error.message}"`,
      });
      assert.equal(await refused.isVisible(), true);
      assert.equal(await form.isVisible(), true);

      await page.fill('#token', token);
      await page.click('#auth button');
      await waitFor(async () => (await rows(page, 'clusters')).length === 3, {
        what: 'the clusters table once the token is accepted',
      });
      assert.equal(await form.isVisible(), false);
      // A string expression: this package compiles without the DOM's types.
      const kept = await page.evaluate(
        '[sessionStorage.getItem("flotilla.apiToken"), localStorage.length]',
      );
      assert.deepEqual(kept, [token, 0], 'kept in sessionStorage only');
      await waitFor(async () => (await rows(page, 'bundles'))[0]?.[0] === 'podinfo', {
        what: 'the bundles table, read with the token',
      });
      // The token also opens the watch stream (fetch, not EventSource): a change shows live.
      status.connected('edge-us', 's3', hello('edge-us', DIGEST));
      await waitFor(async () => (await clusterStates(page))['edge-us'] === 'Ready', {
        what: 'edge-us to turn Ready on the page',
      });

      // A revoked token is forgotten and the form comes back with the hub's reason.
      await authority.apiTokens.revoke('browser');
      await page.reload();
      await form.waitFor({ state: 'visible' });
      await waitFor(
        async () => (await refused.textContent()) === 'the API token has been revoked',
        {
          what: 'the form to say the token was revoked',
        },
      );
      assert.equal(await page.evaluate('sessionStorage.getItem("flotilla.apiToken")'), null);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      await srv.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
);

type RolloutsDeps = NonNullable<HttpDeps['rollouts']>;
type RolloutView = NonNullable<ReturnType<RolloutsDeps['get']>>;

// A rollout of podinfo: canary done, prod progressing; later halted in prod.
function rolloutOf(phase: string, reason: string, prodFailed: number): RolloutView {
  const zero = { Waiting: 0, Updating: 0, Healthy: 0, Failed: 0, RolledBack: 0, Skipped: 0 };
  const stage = (index: number, name: string, state: string, phases: Partial<typeof zero>) => ({
    ...{ index, name, implicit: false, state, clusters: 2, phases: { ...zero, ...phases } },
    ...{ maxConcurrent: 1, maxFailures: 0, soakMs: 0, soakRemainingMs: 0, approval: false },
    ...{ approvedBy: '', approvedAt: null, windows: [], startedAt: null, completedAt: null },
  });
  return {
    ...{ bundle: 'podinfo', id: 'podinfo@a1b2c3d4e5f6-1', revision: REV, phase, reason, stage: 1 },
    ...{ onFailure: 'halt' as const, progressDeadlineMs: 600_000, counts: zero, clusters: [] },
    stages: [
      stage(0, 'canary', 'Completed', { Healthy: 1 }),
      stage(1, 'prod', 'Progressing', {
        Updating: 1 - prodFailed,
        Failed: prodFailed,
        Waiting: 1,
      }),
    ],
    ...{ startedAt: new Date().toISOString(), updatedAt: new Date().toISOString(), endedAt: null },
  } as RolloutView;
}

test(
  'fleet-page-shows-active-rollouts-by-stage-live-with-the-halt-reason',
  { skip, timeout: 30_000 },
  async () => {
    const deps = world();
    let current = rolloutOf('Progressing', 'stage 2/2 (prod) started', 0);
    deps.rollouts = {
      list: () => [
        {
          ...{ bundle: current.bundle, id: current.id, revision: REV, phase: current.phase },
          ...{ stage: '2/2 (prod)', counts: current.counts, reason: current.reason },
          updatedAt: current.updatedAt,
        },
      ],
      get: () => current,
      act: () => Promise.reject(new Error('read-only test')),
    };
    const { srv, page, problems } = await open(deps);
    const stages = () =>
      page.$$eval('#rollouts tbody tr', (trs) =>
        trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')),
      );
    try {
      await page.locator('#rollouts-section').waitFor({ state: 'visible' });
      await waitFor(async () => (await stages()).length === 2, { what: 'the rollout stages' });
      assert.deepEqual(await stages(), [
        ['1. canary', 'Completed', '0', '0', '1', '0', '0', '0', ''],
        ['2. prod', 'Progressing', '1', '1', '0', '0', '0', '0', ''],
      ]);
      assert.match(
        await page.$eval('#rollouts h3', (h) => h.textContent ?? ''),
        /podinfo a1b2c3d Progressing/,
      );
      // It halts: the page follows on the next status change, without a reload.
      const why = `halted: stage 2/2 (prod): 1 of 2 clusters failed (0 tolerated); edge-us: ${HOSTILE}`;
      current = rolloutOf('Halted', why, 1);
      (deps.status as FleetStatus).connected('edge-us', 's9', hello('edge-us'));
      await waitFor(
        async () => (await page.$eval('#rollouts p', (p) => p.textContent ?? '')) === why,
        { what: 'the halt reason on the page' },
      );
      assert.deepEqual((await stages())[1], [
        '2. prod',
        'Progressing',
        '1',
        '0',
        '0',
        '1',
        '0',
        '0',
        '',
      ]);
      assert.equal(await page.locator('img').count(), 0);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      await srv.stop();
    }
  },
);
