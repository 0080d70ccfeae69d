// Query load for benchmarks, in its own process (forked), so its buffers and event loop
// are neither the hub's nor the benchmark's: it sends the queries `flotilla status`,
// `flotilla get deployments -l` and `flotilla history` send, one at a time in turn, until
// told to stop, and reports when each started (wall ms) and how long it took.
import { performance } from 'node:perf_hooks';

/** One query's timing. */
export interface QuerySample {
  route: string;
  /** Wall-clock ms when it was sent. */
  at: number;
  ms: number;
  ok: boolean;
}

/** Parent → query process. */
export type ToQueryLoad =
  { t: 'start'; base: string; routes: Record<string, string> } | { t: 'stop' };

/** The routes of the CLI commands the issue names, for a fleet of simulated clusters. */
export function cliRoutes(oneCluster: string): Record<string, string> {
  return {
    status: '/api/v1/clusters',
    'get deployments -l env=prod': `/api/v1/deployments?selector=${encodeURIComponent('env=prod')}`,
    history: `/api/v1/history?cluster=${encodeURIComponent(oneCluster)}&limit=100`,
  };
}

async function run(
  base: string,
  routes: Record<string, string>,
  stop: () => boolean,
): Promise<QuerySample[]> {
  const out: QuerySample[] = [];
  const list = Object.entries(routes);
  for (let i = 0; !stop(); i++) {
    const [route, path] = list[i % list.length] as [string, string];
    const at = performance.timeOrigin + performance.now();
    const t = performance.now();
    let ok = false;
    try {
      const res = await fetch(`${base}${path}`);
      await res.arrayBuffer();
      ok = res.ok;
    } catch {
      ok = false;
    }
    out.push({ route, at, ms: performance.now() - t, ok });
    if (i === 0) process.send?.('running');
  }
  return out;
}

// Runs only as a forked child; ends with its parent.
if (process.send) {
  process.on('disconnect', () => process.exit(0));
  let stopped = false;
  let running: Promise<QuerySample[]> | undefined;
  process.on('message', (m: ToQueryLoad) => {
    if (m.t === 'start') running = run(m.base, m.routes, () => stopped);
    else {
      stopped = true;
      void (running ?? Promise.resolve([])).then((samples) => {
        process.send?.(samples, () => process.exit(0));
      });
    }
  });
}
