// Unit tests of the CLI's TLS trust: where the CA comes from, and errors that name the fix.
// The real HTTPS hub is exercised in integration-tests/src/identity/nats-revoke-fleet.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { HubTlsError, caFileOf, hubFetch, tlsHint } from './hub-tls.js';
import type { Fetch } from './hub-client.js';
import { UsageError } from './io.js';
import type { CliIo } from './io.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const io = (env: NodeJS.ProcessEnv, cwd = '/'): CliIo => ({
  stdout: { write: () => true },
  stderr: { write: () => true },
  env,
  cwd,
});

test('the-ca-comes-from-the-flag-then-the-env-then-the-admin-directory-when-it-holds-one', async () => {
  const home = await mkdtemp(join(tmpdir(), 'flotilla-cli-tls-'));
  dirs.push(home);
  assert.equal(
    caFileOf(undefined, io({ HOME: home })),
    undefined,
    'no ca.crt in the default admin directory yet',
  );
  await mkdir(join(home, '.config', 'flotilla', 'admin'), { recursive: true });
  await writeFile(join(home, '.config', 'flotilla', 'admin', 'ca.crt'), 'x');
  assert.equal(
    caFileOf(undefined, io({ HOME: home })),
    join(home, '.config', 'flotilla', 'admin', 'ca.crt'),
  );
  assert.equal(
    caFileOf(undefined, io({ HOME: home, FLOTILLA_ADMIN_DIR: '/nowhere' })),
    undefined,
    'FLOTILLA_ADMIN_DIR replaces the default',
  );
  assert.equal(
    caFileOf(undefined, io({ HOME: home, FLOTILLA_CA_FILE: 'ca.pem' }, '/etc')),
    '/etc/ca.pem',
  );
  assert.equal(caFileOf('/a/ca.crt', io({ HOME: home, FLOTILLA_CA_FILE: 'ca.pem' })), '/a/ca.crt');
});

test('tls-failures-become-errors-that-name-the-fix', () => {
  const fetchFailed = Object.assign(new TypeError('fetch failed'), {
    cause: Object.assign(new Error('unable to verify'), {
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    }),
  });
  const unknown = tlsHint(fetchFailed, 'https://hub:7080/api/v1/clusters', undefined);
  assert.ok(unknown instanceof HubTlsError);
  assert.match(
    unknown.message,
    /^hub at https:\/\/hub:7080: certificate signed by unknown authority \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): pass --ca-file/,
  );
  const wrongCa = tlsHint(
    Object.assign(new Error('x'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' }),
    'https://hub:7080/',
    '/a/ca.crt',
  ) as Error;
  assert.match(wrongCa.message, /\/a\/ca\.crt is not the CA that signed it/);
  const host = tlsHint(
    Object.assign(new Error('x'), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }),
    'https://10.0.0.1:7080/',
    undefined,
  ) as Error;
  assert.match(host.message, /not valid for "10\.0\.0\.1".*identity\.hosts/);
  const plain = tlsHint(
    Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }),
    }),
    'http://hub:7080/',
    undefined,
  ) as Error;
  assert.match(plain.message, /probably serves HTTPS.*use https:\/\//);
  const refused = new Error('connect ECONNREFUSED');
  assert.equal(
    tlsHint(refused, 'https://hub:7080/', undefined),
    refused,
    'other errors pass through',
  );
});

test('an-injected-fetch-is-used-as-is-and-an-unreadable-ca-file-is-a-usage-error', () => {
  const fake: Fetch = async () => ({ ok: true, status: 200, text: async () => '{}' });
  assert.equal(hubFetch(fake, '/does/not/exist', io({})), fake);
  assert.throws(
    () => hubFetch(fetch, '/does/not/exist/ca.crt', io({})),
    (e: Error) =>
      e instanceof UsageError &&
      /--ca-file: cannot read \/does\/not\/exist\/ca\.crt/.test(e.message),
  );
});
