// Another process's memory and CPU, read from /proc (Linux), for benchmarks that measure
// a server they started as a child: RSS now, RSS sampled over a window (peak, median),
// and CPU time used.
import { readFileSync } from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** Resident set size of pid, bytes (0 when it is gone). */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU time (user + system) pid has used, ms; with `mainThread`, only its main thread's (not libuv's pool, not V8's helpers). */
export function cpuMsOf(pid: number, mainThread = false): number {
  const stat = readFileSync(
    mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`,
    'utf8',
  );
  // Fields after the command name (which may hold spaces) start after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}

/** The 1-minute load average. */
export function loadAverage(): number {
  return Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
}

/** Samples RSS of pid every intervalMs until stop(); then peak and median. */
export function sampleRss(
  pid: number,
  intervalMs = 50,
): { stop(): { peak: number; median: number; samples: number } } {
  const values: number[] = [rssOf(pid)];
  const timer = setInterval(() => values.push(rssOf(pid)), intervalMs);
  return {
    stop() {
      clearInterval(timer);
      values.push(rssOf(pid));
      const sorted = values.filter((v) => v > 0).sort((a, b) => a - b);
      return {
        peak: sorted[sorted.length - 1] ?? 0,
        median: sorted[Math.floor(sorted.length / 2)] ?? 0,
        samples: sorted.length,
      };
    },
  };
}

/** The p-th percentile (0..100) of values (nearest rank); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[
    Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  ] as number;
}

/** The median of values; NaN when empty. */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}
