// Exponential backoff with full jitter, so a thousand agents that lost the hub at the
// same moment do not come back at the same moment.

/** Options for Backoff; delays in ms. */
export interface BackoffOptions {
  /** First delay (default 500). */
  initialMs?: number;
  /** Longest delay (default 30 000). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  multiplier?: number;
  /** Fraction of each delay that is randomized, 0..1 (default 0.5). */
  jitter?: number;
  /** Source of randomness in [0, 1), for tests (default Math.random). */
  random?: () => number;
}

/** Computes successive retry delays; reset() after a success. */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly multiplier: number;
  private readonly jitter: number;
  private readonly random: () => number;

  constructor(opts: BackoffOptions = {}) {
    this.initialMs = opts.initialMs ?? 500;
    this.maxMs = opts.maxMs ?? 30_000;
    this.multiplier = opts.multiplier ?? 2;
    this.jitter = opts.jitter ?? 0.5;
    this.random = opts.random ?? Math.random;
  }

  /** The delay before the next attempt; grows each call up to maxMs. */
  next(): number {
    const base = Math.min(this.maxMs, this.initialMs * this.multiplier ** this.attempt);
    this.attempt++;
    const spread = base * this.jitter;
    return Math.round(base - spread + this.random() * spread);
  }

  /** Attempts made since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** Resolves after ms, or early (without rejecting) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
