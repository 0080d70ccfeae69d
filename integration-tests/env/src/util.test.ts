import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { freePort, waitFor, WaitTimeoutError } from './index.js';

test('wait-for-returns-the-first-truthy-value', async () => {
  let calls = 0;
  const value = await waitFor(() => (++calls >= 3 ? `done after ${calls}` : false), {
    what: 'third call',
    intervalMs: 1,
  });
  assert.equal(value, 'done after 3');
});

test('wait-for-timeout-names-what-and-the-last-error', async () => {
  await assert.rejects(
    waitFor(
      () => {
        throw new Error('connection refused');
      },
      { what: 'hub /readyz', timeoutMs: 50, intervalMs: 10 },
    ),
    (err: unknown) =>
      err instanceof WaitTimeoutError &&
      err.code === 'WAIT_TIMEOUT' &&
      /waiting for hub \/readyz; last error: connection refused/.test(err.message),
  );
});

test('wait-for-stops-when-aborted', async () => {
  const abort = new AbortController();
  setTimeout(() => abort.abort(new Error('server died')), 20);
  await assert.rejects(
    waitFor(() => false, { what: 'never', timeoutMs: 5_000, intervalMs: 5, signal: abort.signal }),
    /server died/,
  );
});

test('free-port-can-be-listened-on', async () => {
  const port = await freePort();
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  await new Promise((resolve) => server.close(resolve));
});
