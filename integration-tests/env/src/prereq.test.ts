import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PrerequisiteMissingError, requireEnv, requirePrerequisite } from './index.js';

const missing = (): boolean => false;

test('missing-prerequisite-fails-under-ci', async () => {
  await assert.rejects(
    requirePrerequisite('frobnicator', missing, 'run npm run prereqs', { env: { CI: 'true' } }),
    (err: unknown) =>
      err instanceof PrerequisiteMissingError &&
      err.code === 'PREREQUISITE_MISSING' &&
      /run npm run prereqs/.test(err.message),
  );
});

test('missing-prerequisite-skips-with-the-fix-outside-ci', async () => {
  const reason = await requirePrerequisite(
    'frobnicator',
    () => 'not on PATH',
    'apt-get install frobnicator',
    { env: {} },
  );
  assert.match(reason ?? '', /frobnicator \(not on PATH\): apt-get install frobnicator/);
});

test('a-throwing-check-counts-as-missing', async () => {
  await assert.rejects(
    requirePrerequisite(
      'x',
      () => {
        throw new Error('boom');
      },
      'fix it',
      { env: { CI: '1' } },
    ),
    /missing prerequisite x \(boom\): fix it/,
  );
});

test('present-prerequisite-needs-no-skip-even-in-ci', async () => {
  assert.equal(
    await requirePrerequisite('node', () => true, 'install node', { env: { CI: 'true' } }),
    undefined,
  );
});

test('require-env-names-the-missing-binary-and-the-fix', async () => {
  const env = {
    FLOTILLA_NATS_SERVER: '/nonexistent/nats-server',
    FLOTILLA_TEST_RUNTIME: 'binaries',
  };
  const reason = await requireEnv(['nats'], { env });
  assert.match(reason ?? '', /\/nonexistent\/nats-server not found.*prereqs\.sh/);
  await assert.rejects(
    requireEnv(['nats'], { env: { ...env, CI: 'true' } }),
    PrerequisiteMissingError,
  );
});
