// Heap snapshots of a server a benchmark started (with --heapsnapshot-signal=SIGUSR2 and
// --diagnostic-dir=DIR), and a comparison of two snapshots by constructor: what a
// benchmark reads to tell what the server holds per cluster or per event.
import { readFileSync } from 'node:fs';
import { readdir, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Node arguments that let heapSnapshot() ask a server for a snapshot written into dir. */
export function heapSnapshotArgs(dir: string): string[] {
  return [`--diagnostic-dir=${dir}`, '--heapsnapshot-signal=SIGUSR2'];
}

/**
 * Has the process write a heap snapshot (SIGUSR2) into dir and waits for it (at most
 * 5 min), renamed `<label>.heapsnapshot`; returns its path. One at a time per dir.
 */
export async function heapSnapshot(pid: number, dir: string, label: string): Promise<string> {
  const before = new Set(await readdir(dir));
  process.kill(pid, 'SIGUSR2');
  const deadline = Date.now() + 300_000;
  for (;;) {
    const made = (await readdir(dir)).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    // Written in one go by V8; its size stops growing when done.
    if (made) {
      let last = -1;
      for (;;) {
        const { size } = await stat(join(dir, made));
        if (size === last && size > 0) break;
        last = size;
        await sleep(1_000);
      }
      const path = join(dir, `${label}.heapsnapshot`);
      await rename(join(dir, made), path);
      return path;
    }
    if (Date.now() > deadline) throw new Error(`no heap snapshot from pid ${pid} after 300 s`);
    await sleep(500);
  }
}

/** Objects of one constructor (or node type) in a snapshot: how many, and their own bytes. */
export interface HeapGroup {
  name: string;
  count: number;
  bytes: number;
}

/** Self sizes per constructor name (objects), or per node type for strings, code, arrays... */
export function heapGroups(path: string): Map<string, HeapGroup> {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [typeAt, nameAt, sizeAt] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const out = new Map<string, HeapGroup>();
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    const type = types[snap.nodes[i + typeAt!]!] ?? '?';
    const key =
      type === 'object' || type === 'closure'
        ? `${type} ${snap.strings[snap.nodes[i + nameAt!]!]}`
        : `(${type})`;
    const g = out.get(key) ?? { name: key, count: 0, bytes: 0 };
    g.count += 1;
    g.bytes += snap.nodes[i + sizeAt!]!;
    out.set(key, g);
  }
  return out;
}

/** The groups that grew most in bytes from `early` to `late`, largest first. */
export function heapGrowth(early: string, late: string, top = 25): HeapGroup[] {
  const [a, b] = [heapGroups(early), heapGroups(late)];
  const out: HeapGroup[] = [];
  for (const [name, g] of b) {
    const was = a.get(name) ?? { count: 0, bytes: 0 };
    out.push({ name, count: g.count - was.count, bytes: g.bytes - was.bytes });
  }
  return out.sort((x, y) => y.bytes - x.bytes).slice(0, top);
}

/** Lines of heapGrowth, for a benchmark's report. */
export function formatHeapGrowth(groups: HeapGroup[], per?: { n: number; what: string }): string {
  return groups
    .map((g) => {
      const each = per && per.n > 0 ? `, ${(g.bytes / per.n).toFixed(0)} B per ${per.what}` : '';
      return `  ${(g.bytes / 1024).toFixed(0).padStart(9)} KiB ${String(g.count).padStart(9)} objects  ${g.name}${each}`;
    })
    .join('\n');
}

// `node heap-snapshot.js EARLY LATE`: the growth between two snapshots.
if (process.argv[1]?.endsWith('heap-snapshot.js') && process.argv.length >= 4)
  console.log(formatHeapGrowth(heapGrowth(process.argv[2]!, process.argv[3]!, 40)));
