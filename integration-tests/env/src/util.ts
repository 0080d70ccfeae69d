// Small helpers every integration test needs: free ports and polling with a named,
// bounded wait (never a fixed sleep).
import { createServer } from 'node:net';
import { WaitTimeoutError } from './errors.js';

/** Asks the kernel for a free TCP port on 127.0.0.1 (listen on port 0, then release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no port assigned'))));
    });
  });
}

/** Options of waitFor(). */
export interface WaitForOptions {
  /** Names the awaited condition in the timeout error, e.g. "configmap cm1 in cluster a". */
  what: string;
  /** Give up after this long. Default 10 000 ms. */
  timeoutMs?: number;
  /** Pause between attempts. Default 100 ms. */
  intervalMs?: number;
  /** Stops polling (rejecting with the signal's reason), e.g. once the server died. */
  signal?: AbortSignal;
}

/**
 * Calls `fn` until it returns a value other than undefined/false, and returns it. A throw
 * counts as "not yet" and is kept as the cause of the WaitTimeoutError.
 */
export async function waitFor<T>(
  fn: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitForOptions,
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    options.signal?.throwIfAborted();
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline)
      throw new WaitTimeoutError(options.what, timeoutMs, { cause: lastError });
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}

/** Resolves after `ms` milliseconds. For polling loops only, never to wait for a state. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
