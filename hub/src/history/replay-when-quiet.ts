// A restarted hub's agents all dial back within seconds; the history replay (tens of
// thousands of events, seconds of the event loop) waits until they have, so welcoming
// them and telling them their state comes first. Meanwhile history reads are partial,
// and the hub says so (its "history" degradation).

/**
 * Resolves once `count()` has not grown for `quietMs`, checked every `quietMs / 4`, or
 * after `maxMs` at the latest; early (without waiting further) when `signal` aborts.
 */
export function whenQuiet(
  count: () => number,
  quietMs: number,
  maxMs: number,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve) => {
    const start = Date.now();
    let last = count();
    let lastChange = start;
    const timer = setInterval(
      () => {
        const now = Date.now();
        const n = count();
        if (n !== last) {
          last = n;
          lastChange = now;
        }
        if (signal?.aborted || now - lastChange >= quietMs || now - start >= maxMs) {
          clearInterval(timer);
          resolve();
        }
      },
      Math.max(10, Math.floor(quietMs / 4)),
    );
    timer.unref();
  });
}
