// An opt-in memory breakdown of the agent process (FLOTILLA_AGENT_MEMORY_REPORT=1): one
// line on stderr at each SIGUSR2, for finding where the RSS goes without a debugger: the
// kernel's view (anonymous vs file-backed, i.e. the node binary's pages) next to V8's
// (heap spaces, code, external memory) and whether Node's bundled undici was loaded.
import { readFileSync } from 'node:fs';
import { getHeapCodeStatistics, getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';

const MIB = 1024 * 1024;
const mib = (bytes: number): string => (bytes / MIB).toFixed(1);

/** kB fields of /proc/self/smaps_rollup (Linux); empty elsewhere. */
function rollup(): Record<string, number> {
  try {
    const out: Record<string, number> = {};
    for (const m of readFileSync('/proc/self/smaps_rollup', 'utf8').matchAll(
      /^(\w+):\s+(\d+) kB/gm,
    ))
      out[m[1] as string] = Number(m[2]) * 1024;
    return out;
  } catch {
    return {};
  }
}

/** One line: RSS split by the kernel, then V8's heap by space (committed/used, MiB). */
export function memoryReport(): string {
  const r = rollup();
  const h = getHeapStatistics();
  const code = getHeapCodeStatistics();
  const usage = process.memoryUsage();
  const spaces = getHeapSpaceStatistics()
    .filter((s) => s.space_size > 0)
    .map(
      (s) =>
        `${s.space_name.replace(/_space$/, '')}=${mib(s.space_size)}/${mib(s.space_used_size)}`,
    )
    .join(' ');
  // Undocumented but stable since Node 0.x: the built-in modules loaded so far.
  const loaded = (process as { moduleLoadList?: string[] }).moduleLoadList ?? [];
  const undici = loaded.some((m) => m.includes('undici'));
  return (
    `memory MiB: rss=${mib(usage.rss)} anon=${mib(r.Anonymous ?? 0)} file=${mib((r.Rss ?? 0) - (r.Anonymous ?? 0))} ` +
    `heap=${mib(h.total_heap_size)}/${mib(h.used_heap_size)} external=${mib(usage.external)} ` +
    `arrayBuffers=${mib(usage.arrayBuffers)} malloced=${mib(h.malloced_memory)} ` +
    `bytecode=${mib(code.bytecode_and_metadata_size)} code=${mib(code.code_and_metadata_size)} ` +
    `undici=${undici} builtins=${loaded.length} | ${spaces}`
  );
}

/** With FLOTILLA_AGENT_MEMORY_REPORT=1, writes memoryReport() to stderr on each SIGUSR2; returns whether it is on. */
export function reportMemoryOnSignal(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.FLOTILLA_AGENT_MEMORY_REPORT !== '1') return false;
  process.on('SIGUSR2', () => process.stderr.write(`${memoryReport()}\n`));
  return true;
}
