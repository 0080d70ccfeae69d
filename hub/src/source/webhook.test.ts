import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '@flotilla/common';
import { WebhookHandler, parsePush, readWebhookSecret, sameRepository } from './webhook.js';
import type { WebhookTarget } from './webhook.js';

const SECRET = 'hook-secret-42';
const REPO = 'https://git.example.com/platform/fleet.git';

function githubPush(ref = 'refs/heads/main', url = REPO): string {
  return JSON.stringify({
    ref,
    repository: { clone_url: url, html_url: url.replace(/\.git$/, '') },
  });
}
const hmac = (body: string, secret = SECRET): string =>
  createHmac('sha256', secret).update(body).digest('hex');

describe('WebhookHandler behind a real HTTP server', () => {
  let server: Server;
  let base: string;
  let triggered: string[];
  const logLines: string[] = [];

  before(async () => {
    triggered = [];
    const target = (name: string, url: string): WebhookTarget => ({
      url,
      secret: SECRET,
      followsPushedRef: (r) => r === 'refs/heads/main',
      triggerNow: () => void triggered.push(name),
    });
    const targets = new Map([
      ['fleet', target('fleet', REPO)],
      ['other', target('other', 'https://gitlab.example.com/ops/other.git')],
    ]);
    const logger = createLogger({
      name: 't',
      level: 'debug',
      destination: new Writable({
        write: (c: Buffer, _e, cb) => (logLines.push(c.toString()), cb()),
      }),
    });
    const handler = new WebhookHandler((name) => targets.get(name), logger, 4096);
    server = createServer((req, res) => {
      const name = (req.url ?? '').split('/').pop() ?? '';
      void handler
        .handle(req, name)
        .then((r) =>
          res
            .writeHead(r.status, { 'content-type': 'application/json' })
            .end(JSON.stringify(r.body)),
        );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/webhooks`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const post = async (
    source: string,
    headers: Record<string, string>,
    body: string,
  ): Promise<{
    status: number;
    json: { triggered?: boolean; error?: { code: string; message: string } };
  }> => {
    const res = await fetch(`${base}/${source}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    return { status: res.status, json: (await res.json()) as never };
  };

  test('a-github-push-with-a-valid-signature-triggers-a-fetch', async () => {
    triggered = [];
    const body = githubPush();
    const r = await post(
      'fleet',
      { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${hmac(body)}` },
      body,
    );
    assert.equal(r.status, 202);
    assert.equal(r.json.triggered, true);
    assert.deepEqual(triggered, ['fleet']);
  });

  test('a-github-push-with-a-wrong-or-missing-signature-is-401-and-triggers-nothing', async () => {
    triggered = [];
    const body = githubPush();
    const wrong = await post(
      'fleet',
      { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${hmac(body, 'guess')}` },
      body,
    );
    const missing = await post('fleet', { 'x-github-event': 'push' }, body);
    const garbage = await post(
      'fleet',
      { 'x-github-event': 'push', 'x-hub-signature-256': 'sha256=zz' },
      body,
    );
    assert.deepEqual([wrong.status, missing.status, garbage.status], [401, 401, 401]);
    assert.equal(wrong.json.error?.code, 'UNAUTHENTICATED');
    assert.deepEqual(triggered, []);
  });

  test('gitea-signature-and-gitlab-token-are-checked', async () => {
    triggered = [];
    const gitea = JSON.stringify({ ref: 'refs/heads/main', repository: { clone_url: REPO } });
    assert.equal(
      (
        await post(
          'fleet',
          { 'x-gitea-event': 'push', 'x-github-event': 'push', 'x-gitea-signature': hmac(gitea) },
          gitea,
        )
      ).status,
      202,
    );
    assert.equal(
      (
        await post(
          'fleet',
          { 'x-gitea-event': 'push', 'x-gitea-signature': hmac(gitea, 'x') },
          gitea,
        )
      ).status,
      401,
    );
    const gitlab = JSON.stringify({
      ref: 'refs/heads/main',
      project: { git_http_url: 'https://gitlab.example.com/ops/other.git' },
    });
    assert.equal(
      (await post('other', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': SECRET }, gitlab))
        .status,
      202,
    );
    assert.equal(
      (await post('other', { 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': 'nope' }, gitlab))
        .status,
      401,
    );
    assert.equal((await post('other', { 'x-gitlab-event': 'Push Hook' }, gitlab)).status, 401);
    assert.deepEqual(triggered, ['fleet', 'other']);
  });

  test('a-push-to-a-ref-the-source-does-not-follow-is-accepted-and-ignored', async () => {
    triggered = [];
    const body = githubPush('refs/heads/feature');
    const r = await post(
      'fleet',
      { 'x-github-event': 'push', 'x-hub-signature-256': `sha256=${hmac(body)}` },
      body,
    );
    assert.equal(r.status, 202);
    assert.equal(r.json.triggered, false);
    assert.deepEqual(triggered, []);
  });

  test('bad-requests-get-a-4xx-json-error-and-never-a-crash', async () => {
    triggered = [];
    const sig = (b: string): Record<string, string> => ({
      'x-github-event': 'push',
      'x-hub-signature-256': `sha256=${hmac(b)}`,
    });
    const other = githubPush('refs/heads/main', 'https://git.example.com/someone/else.git');
    const cases: [string, Record<string, string>, string, number, RegExp][] = [
      ['fleet', {}, '{}', 400, /unknown webhook sender/],
      ['fleet', sig('not json'), 'not json', 400, /not JSON/],
      ['fleet', sig('[1]'), '[1]', 400, /no "ref"/],
      [
        'fleet',
        sig('{"ref":"refs/heads/main"}'),
        '{"ref":"refs/heads/main"}',
        400,
        /names no repository URL/,
      ],
      ['fleet', sig(other), other, 400, /is for repository .*someone\/else/],
      ['nosuch', sig('{}'), '{}', 404, /webhook for source "nosuch" not found/],
      ['fleet', sig('x'.repeat(5000)), 'x'.repeat(5000), 413, /over the limit of 4096 bytes/],
    ];
    for (const [source, headers, body, status, message] of cases) {
      const r = await post(source, headers, body);
      assert.equal(r.status, status, `${body.slice(0, 30)} → ${r.status}`);
      assert.match(r.json.error?.message ?? '', message);
    }
    assert.deepEqual(triggered, []);
  });

  test('a-ping-is-answered-and-other-events-are-ignored', async () => {
    const ping = JSON.stringify({ zen: 'hi' });
    assert.equal(
      (
        await post(
          'fleet',
          { 'x-github-event': 'ping', 'x-hub-signature-256': `sha256=${hmac(ping)}` },
          ping,
        )
      ).status,
      200,
    );
    const issue = JSON.stringify({ action: 'opened' });
    const r = await post(
      'fleet',
      { 'x-github-event': 'issues', 'x-hub-signature-256': `sha256=${hmac(issue)}` },
      issue,
    );
    assert.equal(r.status, 202);
    assert.equal(r.json.triggered, false);
  });

  test('the-secret-never-reaches-the-log', () => {
    assert.ok(logLines.length > 3);
    assert.doesNotMatch(logLines.join(''), new RegExp(SECRET));
  });
});

test('repository-urls-match-across-clone-web-and-ssh-forms', () => {
  assert.ok(sameRepository('https://github.com/Org/Fleet.git', 'https://GitHub.com/Org/Fleet'));
  assert.ok(sameRepository('git@github.com:Org/Fleet.git', 'https://github.com/Org/Fleet.git'));
  assert.ok(
    sameRepository('https://user:pw@github.com/Org/Fleet/', 'https://github.com/Org/Fleet.git'),
  );
  assert.ok(
    !sameRepository('https://github.com/Org/Fleet.git', 'https://github.com/Org/Other.git'),
  );
  assert.ok(!sameRepository('not a url', 'https://github.com/Org/Fleet.git'));
  assert.deepEqual(parsePush(Buffer.from(githubPush())).ref, 'refs/heads/main');
});

test('webhook-secrets-come-from-a-file-or-env-and-errors-name-the-field-not-the-value', async () => {
  assert.equal(
    await readWebhookSecret({ secretEnv: 'HOOK' }, 'sources[0].webhook', { HOOK: ' s3 \n' }),
    's3',
  );
  await assert.rejects(
    readWebhookSecret({ secretEnv: 'HOOK' }, 'sources[0].webhook', {}),
    /sources\[0\]\.webhook\.secretEnv: environment variable HOOK is not set/,
  );
  await assert.rejects(
    readWebhookSecret({ secretFile: '/nonexistent/secret' }, 'w', {}),
    /w\.secretFile: cannot read/,
  );
});
