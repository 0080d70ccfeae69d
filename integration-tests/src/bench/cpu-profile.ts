// Reads a V8 .cpuprofile (node --cpu-prof) and says where the time went inside a window:
// self time per function and per area of the code. Sample timestamps are V8's monotonic
// clock in µs, which on Linux is CLOCK_MONOTONIC, the clock of process.hrtime() in every
// process: a benchmark marks windows with hrtime and slices another process's profile.
import { readFile } from 'node:fs/promises';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Self time of one function or area, ms. */
export interface ProfileEntry {
  name: string;
  ms: number;
}

/** What a window of a profile shows. */
export interface ProfileSummary {
  totalMs: number;
  /** Time in samples that were not idle. */
  busyMs: number;
  functions: ProfileEntry[];
  areas: ProfileEntry[];
}

/** Now on the monotonic clock, µs (the profile's clock). */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

// Areas by where the code lives, first match wins.
const AREAS: [string, RegExp][] = [
  ['idle', /^\(idle\)$/],
  ['garbage collection', /^\(garbage collector\)$/],
  ['program (native, not attributed)', /^\(program\)$/],
  ['hub: stream (sessions, chunks)', /hub\/dist\/stream\//],
  ['hub: status (folding, queries)', /hub\/dist\/(status|api|history|metrics)\//],
  ['hub: render', /hub\/dist\/render\//],
  ['hub: source (git)', /hub\/dist\/source\/|isomorphic-git/],
  ['hub: other', /hub\/dist\//],
  ['common (hashing, events)', /common\/dist\//],
  ['grpc-js', /@grpc\/grpc-js/],
  ['protobufjs', /protobufjs|@grpc\/proto-loader/],
  ['nats.js', /@nats-io\//],
  ['pino (logging)', /pino|sonic-boom|thread-stream/],
  ['yaml', /node_modules\/yaml\//],
  ['node: zlib', /node:zlib/],
  ['node: http2', /node:internal\/http2/],
  ['node: net/streams', /node:(net|internal\/streams|stream|internal\/stream_base_commons)/],
  ['node: other', /^node:/],
];

function areaOf(node: ProfileNode): string {
  const key = node.callFrame.url || node.callFrame.functionName;
  for (const [area, re] of AREAS)
    if (re.test(key) || re.test(node.callFrame.functionName)) return area;
  return node.callFrame.url ? 'other JavaScript' : `native: ${node.callFrame.functionName || '?'}`;
}

function shortUrl(url: string): string {
  const i = url.lastIndexOf('/dist/');
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  return i >= 0 ? url.slice(url.lastIndexOf('/', i - 1) + 1) : url;
}

/** Self time per function and per area for samples within [fromUs, toUs] (the whole profile when absent). */
export async function summarizeProfile(
  file: string,
  window?: { fromUs: number; toUs: number },
  top = 15,
): Promise<ProfileSummary> {
  const p = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const fn = new Map<string, number>();
  const area = new Map<string, number>();
  let t = p.startTime;
  let total = 0;
  let busy = 0;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    // A sample's time is the gap to the next one.
    const dt = (p.timeDeltas[i + 1] ?? 0) / 1000;
    if (window && (t < window.fromUs || t > window.toUs)) continue;
    const node = byId.get(p.samples[i] as number);
    if (!node) continue;
    total += dt;
    const a = areaOf(node);
    area.set(a, (area.get(a) ?? 0) + dt);
    if (a === 'idle') continue;
    busy += dt;
    const f = node.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${shortUrl(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    fn.set(name, (fn.get(name) ?? 0) + dt);
  }
  const sorted = (m: Map<string, number>): ProfileEntry[] =>
    [...m].map(([name, ms]) => ({ name, ms })).sort((a, b) => b.ms - a.ms);
  return { totalMs: total, busyMs: busy, functions: sorted(fn).slice(0, top), areas: sorted(area) };
}

/** The summary as indented text lines. */
export function formatProfile(label: string, s: ProfileSummary): string[] {
  const pct = (ms: number): string => `${((100 * ms) / Math.max(1, s.busyMs)).toFixed(1)} %`;
  return [
    `profile ${label}: ${Math.round(s.totalMs)} ms window, ${Math.round(s.busyMs)} ms busy`,
    '  by area (share of busy time):',
    ...s.areas
      .filter((a) => a.name !== 'idle')
      .slice(0, 12)
      .map(
        (a) =>
          `    ${a.name.padEnd(36)} ${Math.round(a.ms).toString().padStart(6)} ms  ${pct(a.ms)}`,
      ),
    '  top functions (self time):',
    ...s.functions.map(
      (f) =>
        `    ${Math.round(f.ms).toString().padStart(6)} ms  ${pct(f.ms).padStart(7)}  ${f.name}`,
    ),
  ];
}
