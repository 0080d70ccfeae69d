// The chart resolver against real servers on this machine: a chart repository (a static
// HTTP(S) server with index.yaml written by `helm repo index` and charts packaged by
// `helm package`) and an OCI registry (CNCF Distribution, charts pushed by `helm push`).
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { mkdtemp, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  binaryPaths,
  helmPackage,
  requirePrerequisite,
  startChartRepository,
  startRegistry,
  writeTestChart,
} from '@flotilla/test-env';
import type { TestChartRepository, TestRegistry } from '@flotilla/test-env';
import { CertificateAuthority, createCa } from '../../identity/pki.js';
import { sha256Digest } from './cache.js';
import { ChartFetchError } from './errors.js';
import { ChartResolver } from './resolver.js';
import { defaultChartSettings } from './settings.js';
import type { ChartRepositoryAccess, ChartSettings } from './settings.js';
import { chartSource } from './source.js';
import type { ChartSource } from './source.js';

const executable = (path: string) => () => (accessSync(path, constants.X_OK), true);
const noHelm = await requirePrerequisite(
  'helm',
  executable(binaryPaths().helm),
  'run integration-tests/tools/prereqs.sh (builds helm), or set FLOTILLA_HELM',
);
const noRegistry =
  noHelm ??
  (await requirePrerequisite(
    'registry (CNCF Distribution)',
    executable(binaryPaths().registry),
    'run integration-tests/tools/prereqs.sh (builds the registry), or set FLOTILLA_REGISTRY',
  ));

const PASSWORD = 's3cret-Pa55word';

async function scratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'flotilla-resolver-test-'));
}

async function settings(repositories: ChartRepositoryAccess[] = []): Promise<ChartSettings> {
  return { ...defaultChartSettings(join(await scratch(), 'cache')), repositories };
}

function source(repo: string | undefined, chart: string, version?: string): ChartSource {
  const s = chartSource(repo, chart, version);
  assert.ok(typeof s !== 'string', String(s));
  return s;
}

async function publish(repo: TestChartRepository, name: string, version: string): Promise<string> {
  return repo.publish(await writeTestChart(join(await scratch(), name), { name, version }));
}

async function fails(p: Promise<unknown>, code: string, pattern: RegExp): Promise<string> {
  let message = '';
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof ChartFetchError, String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, pattern);
    message = err.message;
    return true;
  });
  return message;
}

describe('chart repository', { skip: noHelm }, () => {
  let repo: TestChartRepository;
  before(async () => {
    repo = await startChartRepository();
    for (const v of ['1.0.0', '1.1.0', '2.0.0', '2.1.0-rc.1']) await publish(repo, 'podinfo', v);
  });
  after(() => repo?.stop());

  test('a-range-resolves-to-the-newest-matching-version-and-its-archive-digest', async () => {
    const r = new ChartResolver(await settings());
    r.begin('rev1', false);
    const got = await r.resolve(source(repo.url, 'podinfo', '1.x'));
    assert.equal(got.version, '1.1.0');
    const file = await readFile(join(repo.dir, 'podinfo-1.1.0.tgz'));
    assert.equal(got.digest, sha256Digest(file));
    const latest = await r.resolve(source(repo.url, 'podinfo'));
    assert.equal(latest.version, '2.0.0', 'no range: the newest stable version, not a prerelease');
  });

  test('a-version-is-downloaded-once-and-the-index-is-asked-again-only-for-a-new-commit-or-refresh', async () => {
    const r = new ChartResolver(await settings());
    const downloads = () => repo.requests.filter((q) => q.path === '/podinfo-2.0.0.tgz').length;
    const indexes = () => repo.requests.filter((q) => q.path === '/index.yaml').length;
    const [d0, i0] = [downloads(), indexes()];
    r.begin('rev1', false);
    await r.resolve(source(repo.url, 'podinfo', '^2.0.0'));
    r.end();
    r.begin('rev1', false); // a capabilities re-render: nothing asked of the repository
    await r.resolve(source(repo.url, 'podinfo', '^2.0.0'));
    r.end();
    assert.equal(indexes() - i0, 1);
    r.begin('rev2', false); // a new commit: the index again (conditional, 304), no download
    await r.resolve(source(repo.url, 'podinfo', '^2.0.0'));
    r.end();
    r.begin('rev2', true); // the resolve interval
    await r.resolve(source(repo.url, 'podinfo', '^2.0.0'));
    assert.equal(indexes() - i0, 3);
    assert.equal(downloads() - d0, 1);
    assert.ok(repo.requests.some((q) => q.path === '/index.yaml' && q.status === 304));
    // A pinned version already on disk needs no repository at all, even in a new resolver.
    const again = new ChartResolver({ ...(await settings()), cacheDir: r['settings'].cacheDir });
    const before = repo.requests.length;
    again.begin('rev3', false);
    assert.equal((await again.resolve(source(repo.url, 'podinfo', '2.0.0'))).version, '2.0.0');
    assert.equal(repo.requests.length, before);
  });

  test('a-missing-version-is-not-found-and-names-the-versions-there-are', async () => {
    const r = new ChartResolver(await settings());
    r.begin('rev1', false);
    await fails(
      r.resolve(source(repo.url, 'podinfo', '9.x')),
      'NOT_FOUND',
      /no version of chart "podinfo" matches "9.x" \(versions: 2\.1\.0-rc\.1, 2\.0\.0, 1\.1\.0, 1\.0\.0\)/,
    );
    await fails(
      r.resolve(source(repo.url, 'nginx')),
      'NOT_FOUND',
      /chart "nginx" is not in index.yaml/,
    );
  });

  test('an-unreachable-repository-is-unavailable', async () => {
    const stopped = await startChartRepository();
    await stopped.stop();
    const r = new ChartResolver(await settings());
    r.begin('rev1', false);
    await fails(
      r.resolve(source(stopped.url, 'podinfo', '1.x')),
      'UNAVAILABLE',
      /cannot connect.*ECONNREFUSED/,
    );
  });

  test('an-index-over-its-limit-is-too-large', async () => {
    const r = new ChartResolver({ ...(await settings()), maxIndexBytes: 1024 });
    r.begin('rev1', false);
    await fails(
      r.resolve(source(repo.url, 'podinfo', '1.x')),
      'TOO_LARGE',
      /index.yaml of .* over its limit of 1024 bytes/,
    );
  });
});

describe('chart repository over HTTPS with basic auth and a custom CA', { skip: noHelm }, () => {
  let repo: TestChartRepository;
  let caFile: string;
  let passwordFile: string;
  let usernameFile: string;
  before(async () => {
    const ca = new CertificateAuthority(createCa('charts-test-ca'));
    const server = ca.issueKeyPair('127.0.0.1', 'test', 3_600_000, {
      server: true,
      hosts: ['127.0.0.1'],
    });
    repo = await startChartRepository({
      tls: server,
      basicAuth: { username: 'reader', password: PASSWORD },
    });
    const dir = await scratch();
    caFile = join(dir, 'ca.crt');
    usernameFile = join(dir, 'username');
    passwordFile = join(dir, 'password');
    await writeFile(caFile, ca.caPem);
    await writeFile(usernameFile, 'reader\n');
    await writeFile(passwordFile, `${PASSWORD}\n`);
    await publish(repo, 'secured', '0.3.0');
  });
  after(() => repo?.stop());

  const access = (over: Partial<ChartRepositoryAccess> = {}): ChartRepositoryAccess => ({
    url: repo.url,
    username: { file: usernameFile },
    password: { file: passwordFile },
    caFile,
    plainHttp: false,
    insecureSkipTlsVerify: false,
    ...over,
  });

  test('the-configured-ca-and-credentials-fetch-the-chart', async () => {
    const r = new ChartResolver(await settings([access()]));
    r.begin('rev1', false);
    assert.equal((await r.resolve(source(repo.url, 'secured', '0.x'))).version, '0.3.0');
  });

  test('without-the-ca-the-certificate-is-refused', async () => {
    const r = new ChartResolver(await settings([access({ caFile: undefined } as never)]));
    r.begin('rev1', false);
    await fails(r.resolve(source(repo.url, 'secured', '0.x')), 'UNAVAILABLE', /certificate/);
  });

  test('a-wrong-password-is-unauthenticated-and-no-message-holds-a-credential', async () => {
    const wrong = join(await scratch(), 'wrong');
    await writeFile(wrong, 'not-the-password');
    const r = new ChartResolver(await settings([access({ password: { file: wrong } })]));
    r.begin('rev1', false);
    const message = await fails(
      r.resolve(source(repo.url, 'secured', '0.x')),
      'UNAUTHENTICATED',
      /answered 401/,
    );
    for (const secret of [
      'not-the-password',
      PASSWORD,
      Buffer.from('reader:not-the-password').toString('base64'),
    ])
      assert.ok(!message.includes(secret), message);
    const env = new ChartResolver(
      await settings([access({ password: { env: 'FLOTILLA_TEST_UNSET_PASSWORD' } })]),
      {},
    );
    env.begin('rev1', false);
    await fails(
      env.resolve(source(repo.url, 'secured', '0.x')),
      'UNAUTHENTICATED',
      /\$FLOTILLA_TEST_UNSET_PASSWORD, which is not set/,
    );
  });
});

describe('OCI registry', { skip: noRegistry }, () => {
  let registry: TestRegistry;
  let secured: TestRegistry;
  let passwordFile: string;
  let caFile: string;
  before(async () => {
    const ca = new CertificateAuthority(createCa('registry-test-ca'));
    const cert = ca.issueKeyPair('127.0.0.1', 'test', 3_600_000, {
      server: true,
      hosts: ['127.0.0.1'],
    });
    registry = await startRegistry();
    secured = await startRegistry({
      tls: { ...cert, caPem: ca.caPem },
      basicAuth: { username: 'pusher', password: PASSWORD },
    });
    const dir = await scratch();
    for (const v of ['0.1.0', '0.2.0', '1.0.0']) {
      const tgz = await helmPackage(
        await writeTestChart(join(dir, `oci-${v}`, 'hello'), { name: 'hello', version: v }),
        join(dir, 'out'),
      );
      await registry.push(tgz, 'charts');
      await secured.push(tgz, 'charts');
    }
    passwordFile = join(dir, 'password');
    caFile = join(dir, 'ca.crt');
    await writeFile(passwordFile, PASSWORD);
    await writeFile(caFile, ca.caPem);
  });
  after(async () => {
    await registry?.stop();
    await secured?.stop();
  });

  test('a-range-resolves-from-the-tags-and-the-layer-digest-is-the-archive-digest', async () => {
    const r = new ChartResolver(
      await settings([{ url: registry.url, plainHttp: true, insecureSkipTlsVerify: false }]),
    );
    r.begin('rev1', false);
    const got = await r.resolve(source(undefined, `${registry.url}/charts/hello`, '0.x'));
    assert.equal(got.version, '0.2.0');
    assert.equal(got.digest, sha256Digest(got.archive));
    const viaRepo = await r.resolve(source(`${registry.url}/charts`, 'hello', '1.0.0'));
    assert.equal(viaRepo.version, '1.0.0');
    await fails(
      r.resolve(source(`${registry.url}/charts`, 'hello', '3.0.0')),
      'NOT_FOUND',
      /version 3.0.0 not found/,
    );
  });

  test('basic-auth-and-a-custom-ca-reach-a-secured-registry-and-a-wrong-password-is-refused', async () => {
    const entry = (passwordEnv: string): ChartRepositoryAccess => ({
      url: `${secured.url}/charts`,
      username: { env: 'REG_USER' },
      password: { env: passwordEnv },
      caFile,
      plainHttp: false,
      insecureSkipTlsVerify: false,
    });
    const env = { REG_USER: 'pusher', REG_PASS: PASSWORD, REG_WRONG: 'guess' };
    const r = new ChartResolver(await settings([entry('REG_PASS')]), env);
    r.begin('rev1', false);
    assert.equal(
      (await r.resolve(source(undefined, `${secured.url}/charts/hello`, '>=0.2.0 <1.0.0'))).version,
      '0.2.0',
    );
    const bad = new ChartResolver(await settings([entry('REG_WRONG')]), env);
    bad.begin('rev1', false);
    const message = await fails(
      bad.resolve(source(undefined, `${secured.url}/charts/hello`, '0.x')),
      'UNAUTHENTICATED',
      /refused/,
    );
    assert.ok(!message.includes('guess') && !message.includes(PASSWORD), message);
    const anonymous = new ChartResolver(await settings([]), env);
    anonymous.begin('rev1', false);
    await fails(
      anonymous.resolve(source(undefined, `${secured.url}/charts/hello`, '0.x')),
      'UNAVAILABLE',
      /certificate/,
    );
  });
});

describe('a hostile repository', () => {
  // Serves an index naming a chart, then a chart larger than allowed without a length
  // (streamed), and a path that never answers.
  async function hostile(): Promise<{ url: string; close: () => Promise<void> }> {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      if (req.url === '/index.yaml') {
        res.end(
          'apiVersion: v1\nentries:\n  big:\n  - version: 1.0.0\n    urls: [big-1.0.0.tgz]\n  slow:\n  - version: 1.0.0\n    urls: [slow.tgz]\n',
        );
      } else if (req.url === '/big-1.0.0.tgz') {
        res.writeHead(200);
        const chunk = Buffer.alloc(64 * 1024, 1);
        const pump = () => {
          while (res.write(chunk)) if (res.writableLength > 1 << 20) break;
        };
        res.on('drain', pump);
        pump();
      }
      // /slow.tgz: never answered.
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    return {
      url: `http://127.0.0.1:${port}`,
      close: () =>
        new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
    };
  }

  test('a-chart-over-its-size-limit-and-a-repository-that-never-answers-are-bundle-errors', async () => {
    const h = await hostile();
    try {
      const r = new ChartResolver({
        ...(await settings()),
        maxChartBytes: 256 * 1024,
        fetchTimeoutMs: 500,
      });
      r.begin('rev1', false);
      await fails(
        r.resolve(source(h.url, 'big', '1.x')),
        'TOO_LARGE',
        /chart big 1\.0\.0 .* over its limit of 262144 bytes/,
      );
      await fails(
        r.resolve(source(h.url, 'slow', '1.x')),
        'UNAVAILABLE',
        /no complete answer within 500 ms \(charts\.fetchTimeout\)/,
      );
    } finally {
      await h.close();
    }
  });
});

describe('chart cache', () => {
  test('the-cache-keeps-the-most-recently-used-charts-within-its-size-bound', async () => {
    const { ChartCache } = await import('./cache.js');
    const dir = join(await scratch(), 'cache');
    const cache = new ChartCache(dir, 2500);
    const archive = (n: number) => Buffer.alloc(1000, n);
    const put = (n: number) =>
      cache.put({
        chart: 'c',
        version: `${n}.0.0`,
        digest: sha256Digest(archive(n)),
        archive: archive(n),
      });
    await put(1);
    await put(2);
    // 1.0.0 was used after 2.0.0: the third chart evicts 2.0.0, the least recently used.
    const file = async (v: string): Promise<string> => {
      for (const f of await readdir(dir))
        if (f.endsWith('.json') && JSON.parse(await readFile(join(dir, f), 'utf8')).version === v)
          return join(dir, f.replace(/\.json$/, '.tgz'));
      throw new Error(`no ${v} in the cache`);
    };
    const now = Date.now() / 1000;
    await utimes(await file('2.0.0'), now - 20, now - 20);
    await utimes(await file('1.0.0'), now - 30, now - 30);
    assert.ok(await cache.get('c', '1.0.0'), 'a hit touches the archive');
    assert.ok((await stat(await file('1.0.0'))).mtimeMs > (now - 20) * 1000);
    await put(3);
    assert.ok(await cache.get('c', '1.0.0'));
    assert.equal(await cache.get('c', '2.0.0'), undefined);
    assert.ok(await cache.get('c', '3.0.0'));
    assert.equal((await readdir(dir)).filter((f) => f.endsWith('.tgz')).length, 2);
    assert.equal(
      await cache.get('c', '1.0.0', 'sha256:other'),
      undefined,
      'a digest that differs is a miss',
    );
  });
});
