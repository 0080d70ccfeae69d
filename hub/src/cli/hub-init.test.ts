// `flotilla hub init` makes the identity directory hub replicas mount read-only.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { HUB_INIT_USAGE, hubInitCommand } from './hub-init.js';
import { UsageError } from './io.js';
import { captureIo } from './testing.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('hub-init-writes-a-ca-and-the-first-administrator-once-keys-private', async () => {
  const base = await mkdtemp(join(tmpdir(), 'flotilla-hub-init-'));
  dirs.push(base);
  const { out, cli } = captureIo({ HOME: '/nonexistent' }, base);
  assert.equal(await hubInitCommand(['--identity-dir', 'identity'], cli), 0);
  const dir = join(base, 'identity');
  assert.deepEqual((await readdir(dir)).sort(), ['admin.crt', 'admin.key', 'ca.crt', 'ca.key']);
  for (const [f, mode] of [
    ['ca.key', 0o600],
    ['admin.key', 0o600],
    ['ca.crt', 0o644],
    ['admin.crt', 0o644],
  ] as const)
    assert.equal((await stat(join(dir, f))).mode & 0o777, mode, f);
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  // The administrator's certificate is the CA's, for flotilla-admin.
  const ca = new X509Certificate(await readFile(join(dir, 'ca.crt')));
  const admin = new X509Certificate(await readFile(join(dir, 'admin.crt')));
  assert.ok(admin.verify(ca.publicKey));
  assert.match(admin.subject, /CN=flotilla-admin/);
  assert.match(admin.subject, /O=flotilla-admin/);
  // Secrets go to files only.
  assert.match(out.stdout, /secret \(mode 0600\): .*ca\.key, .*admin\.key/);
  assert.doesNotMatch(out.stdout, /PRIVATE KEY/);
  // A second run would make a second CA: refused, nothing changed.
  const before = await readFile(join(dir, 'ca.key'), 'utf8');
  await assert.rejects(hubInitCommand(['--identity-dir', dir], cli), (e: unknown) => {
    assert.match(String(e), /ca\.crt exists already: the hub's identity is made once/);
    return true;
  });
  assert.equal(await readFile(join(dir, 'ca.key'), 'utf8'), before);
  // --new-admin: a new first administrator from the same CA, nothing else touched.
  const oldAdmin = await readFile(join(dir, 'admin.crt'), 'utf8');
  assert.equal(await hubInitCommand(['--identity-dir', dir, '--new-admin'], cli), 0);
  const renewed = new X509Certificate(await readFile(join(dir, 'admin.crt')));
  assert.notEqual(renewed.toString(), oldAdmin);
  assert.ok(renewed.verify(ca.publicKey));
  assert.equal(await readFile(join(dir, 'ca.key'), 'utf8'), before);
  assert.equal((await stat(join(dir, 'admin.key'))).mode & 0o777, 0o600);
  await assert.rejects(
    hubInitCommand(['--identity-dir', join(base, 'empty'), '--new-admin'], cli),
    /holds no CA \(ca\.crt and ca\.key\)/,
  );
});

test('hub-init-rejects-bad-command-lines', async () => {
  const { out, cli } = captureIo({ HOME: '/nonexistent' });
  await assert.rejects(hubInitCommand([], cli), (e: unknown) => {
    return e instanceof UsageError && /--identity-dir DIR is required/.test(e.message);
  });
  await assert.rejects(hubInitCommand(['x', '--identity-dir', 'd'], cli), UsageError);
  assert.equal(await hubInitCommand(['--help'], cli), 0);
  assert.equal(out.stdout, HUB_INIT_USAGE);
});
