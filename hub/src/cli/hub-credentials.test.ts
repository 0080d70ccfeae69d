// Which credentials the CLI's HTTP commands present, and that a token never shows in an
// error. The real HTTPS hub is exercised in integration-tests/src/identity/.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CREDENTIALS_HINT, getJson } from './hub-client.js';
import type { Fetch } from './hub-client.js';
import { hubCredentials } from './hub-credentials.js';
import { captureIo } from './testing.js';
import type { CliIo } from './io.js';

const TOKEN = `flt_${'t'.repeat(43)}`;
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function io(cwd: string, env: Record<string, string> = {}): CliIo {
  return captureIo({ HOME: '/nonexistent', ...env }, cwd).cli;
}

test('cli-credentials-token-file-then-admin-certificate-then-env-token', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-cli-creds-'));
  dirs.push(dir);
  await writeFile(join(dir, 'admin.crt'), 'CERT');
  await writeFile(join(dir, 'admin.key'), 'KEY');
  await writeFile(join(dir, 'ci.token'), `${TOKEN}\n`);
  const env = { FLOTILLA_ADMIN_DIR: dir, FLOTILLA_TOKEN: `flt_${'e'.repeat(43)}` };

  assert.deepEqual(hubCredentials('ci.token', io(dir, env)), {
    authorization: `Bearer ${TOKEN}`,
  });
  const admin = hubCredentials(undefined, io(dir, env));
  assert.equal(admin.client?.cert.toString(), 'CERT');
  assert.equal(admin.authorization, undefined);
  assert.deepEqual(hubCredentials(undefined, io(dir, { FLOTILLA_TOKEN: env.FLOTILLA_TOKEN })), {
    authorization: `Bearer ${env.FLOTILLA_TOKEN}`,
  });
  assert.deepEqual(hubCredentials(undefined, io(dir)), {});
});

test('cli-credentials-errors-name-the-file-never-the-token', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-cli-creds-'));
  dirs.push(dir);
  assert.throws(
    () => hubCredentials('missing.token', io(dir)),
    /--token-file: cannot read .*missing\.token/,
  );
  await writeFile(join(dir, 'two.token'), `${TOKEN} ${TOKEN}\n`);
  assert.throws(
    () => hubCredentials('two.token', io(dir)),
    (err: Error) =>
      /does not hold a single API token/.test(err.message) && !err.message.includes(TOKEN),
  );
  assert.throws(
    () => hubCredentials(undefined, io(dir, { FLOTILLA_TOKEN: `${TOKEN}\nextra` })),
    (err: Error) =>
      /\$FLOTILLA_TOKEN does not hold/.test(err.message) && !err.message.includes(TOKEN),
  );
});

test('a-401-from-the-hub-says-how-to-give-the-cli-credentials', async () => {
  const body = { error: { code: 'UNAUTHENTICATED', message: 'the API token has been revoked' } };
  const fetch401: Fetch = async () => ({
    ok: false,
    status: 401,
    text: async () => JSON.stringify(body),
  });
  await assert.rejects(getJson(fetch401, 'https://hub:7080/api/v1/clusters'), (err: Error) => {
    assert.equal(
      err.message,
      `hub answered 401 UNAUTHENTICATED: the API token has been revoked; ${CREDENTIALS_HINT}`,
    );
    return true;
  });
  const fetch403: Fetch = async () => ({
    ok: false,
    status: 403,
    text: async () =>
      JSON.stringify({
        error: {
          code: 'PERMISSION_DENIED',
          message: 'cluster certificates may not read fleet status',
        },
      }),
  });
  await assert.rejects(
    getJson(fetch403, 'https://hub:7080/api/v1/clusters'),
    (err: Error) =>
      err.message ===
      'hub answered 403 PERMISSION_DENIED: cluster certificates may not read fleet status',
  );
});
