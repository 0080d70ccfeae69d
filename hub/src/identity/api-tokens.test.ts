// API tokens in the identity state: shown once, stored as a digest, durable across a
// restart, refused once revoked or expired, and listed without the token.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '@flotilla/common';
import { API_TOKEN_DEFAULT_TTL_MS } from './api-tokens.js';
import { IdentityAuthority } from './authority.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function authority(dir: string, now: () => number): Promise<IdentityAuthority> {
  const a = new IdentityAuthority({
    stateDir: dir,
    hosts: ['127.0.0.1'],
    logger: silentLogger(),
    now,
  });
  await a.start();
  return a;
}

test('api-token-is-kept-as-a-digest-and-survives-a-restart', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-api-tokens-'));
  dirs.push(dir);
  let now = 1_000_000;
  const a = await authority(dir, () => now);
  const { token, expiresAtMs } = await a.apiTokens.create('grafana');
  assert.match(token, /^flt_[A-Za-z0-9_-]{43}$/);
  assert.equal(expiresAtMs, now + API_TOKEN_DEFAULT_TTL_MS);
  const file = await readFile(join(dir, 'identity-state.json'), 'utf8');
  assert.ok(!file.includes(token.slice(4)), 'the token itself is not on disk');
  assert.match(file, /"grafana"/);

  now += 120_000;
  const again = await authority(dir, () => now);
  assert.deepEqual(again.apiTokens.check(token), { ok: true, name: 'grafana', scopes: ['read'] });
  const [listed] = again.apiTokens.list();
  assert.equal(listed?.lastUsedAtMs, now);
  assert.ok(!JSON.stringify(again.apiTokens.list()).includes(token.slice(4)));
  // The last use is written too (at most once a minute), so a restarted hub still shows it.
  const used = now;
  for (let i = 0; i < 100; i++) {
    const stored = JSON.parse(await readFile(join(dir, 'identity-state.json'), 'utf8')) as {
      apiTokens: Record<string, { lastUsedAtMs?: number }>;
    };
    if (stored.apiTokens.grafana?.lastUsedAtMs === used) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const third = await authority(dir, () => now);
  assert.equal(third.apiTokens.list()[0]?.lastUsedAtMs, used, 'last use survives a restart');
  await assert.rejects(again.apiTokens.create('grafana'), /already exists: revoke it first/);
  await assert.rejects(again.apiTokens.create('Not A Name'), /must be a DNS label/);
});

test('api-token-refusals-name-the-token-only-when-recognised', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-api-tokens-'));
  dirs.push(dir);
  let now = 1_000_000;
  const a = await authority(dir, () => now);
  const { token: ci } = await a.apiTokens.create('ci', 60_000);
  const { token: other } = await a.apiTokens.create('other');
  assert.deepEqual(a.apiTokens.check('flt_short'), { ok: false, reason: 'malformed' });
  assert.deepEqual(a.apiTokens.check(`flt_${'x'.repeat(43)}`), { ok: false, reason: 'unknown' });
  now += 60_000;
  assert.deepEqual(a.apiTokens.check(ci), { ok: false, reason: 'expired', name: 'ci' });
  // An expired token's name can be reused at once.
  const { token: ci2 } = await a.apiTokens.create('ci');
  assert.deepEqual(a.apiTokens.check(ci2), { ok: true, name: 'ci', scopes: ['read'] });
  assert.deepEqual(a.apiTokens.check(ci), { ok: false, reason: 'unknown' });
  await a.apiTokens.revoke('other');
  assert.deepEqual(a.apiTokens.check(other), { ok: false, reason: 'revoked', name: 'other' });
  const restarted = await authority(dir, () => now);
  assert.deepEqual(restarted.apiTokens.check(other), {
    ok: false,
    reason: 'revoked',
    name: 'other',
  });
  assert.deepEqual(
    restarted.apiTokens.list().map((t) => [t.name, t.revokedAtMs > 0]),
    [
      ['ci', false],
      ['other', true],
    ],
  );
  await assert.rejects(a.apiTokens.revoke('nope'), /API token "nope" does not exist/);
});

test('a-write-token-may-act-on-rollouts-and-read-only-is-the-default', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-api-tokens-'));
  dirs.push(dir);
  const a = await authority(dir, () => 1_000_000);
  const { token: reader } = await a.apiTokens.create('dashboard');
  const { token: writer, scopes } = await a.apiTokens.create('release-bot', 0, ['write']);
  assert.deepEqual(scopes, ['read', 'rollout', 'write']);
  assert.deepEqual(a.apiTokens.check(reader), { ok: true, name: 'dashboard', scopes: ['read'] });
  assert.deepEqual(a.apiTokens.check(writer), {
    ok: true,
    name: 'release-bot',
    scopes: ['read', 'rollout', 'write'],
  });
  const restarted = await authority(dir, () => 1_000_000);
  assert.deepEqual(
    restarted.apiTokens.list().map((t) => [t.name, t.scopes]),
    [
      ['dashboard', ['read']],
      ['release-bot', ['read', 'rollout', 'write']],
    ],
  );
  await assert.rejects(a.apiTokens.create('x', 0, ['admin']), /token scope "admin" is not known/);
});
