// The wire format between the hub and the renderer (`flotilla renderer`): one HTTP/2
// POST per kustomize or helm run, over mTLS. A job is what ExecToolRunner already takes
// (ToolRequest: files, scratch files, arguments) plus the limits the hub is configured
// with, in one binary body so file bytes are never re-encoded:
//
//   uint32 BE header length | header JSON | the files' bytes, then the scratch files', in header order
//
// The reply is the program's stdout (200), or a JSON { message } that is the bundle's
// render error (422), or a refused job (400/413). Arguments carry ROOT_TOKEN and
// SCRATCH_TOKEN where the run's temp paths go: the renderer puts its own paths there.
import type { ValidationError } from '@flotilla/common';
import type { ToolRequest } from '../tools.js';

/** POST: run one job. */
export const RUN_PATH = '/v1/run';
/** GET: 200 when the renderer serves (the hub probes it for its degraded status). */
export const HEALTH_PATH = '/healthz';

/** Stand for the run's repo root and scratch dir in a job's arguments (control characters never appear in tree paths). */
export const ROOT_TOKEN = '\u0001root\u0001';
export const SCRATCH_TOKEN = '\u0001scratch\u0001';

/** Default largest job body (bundle files and chart archives), both sides: 128 MiB. */
export const DEFAULT_MAX_JOB_BYTES = 128 * 1024 * 1024;

/** Common name of the one client certificate the renderer accepts: the hub's. */
export const RENDERER_CLIENT_NAME = 'flotilla-hub';

const MAX_HEADER_BYTES = 4 * 1024 * 1024;
const MAX_ENTRIES = 100_000;
const MAX_ARGS = 10_000;

/** The limits a job runs with (the hub's render.tool* settings). */
export interface JobLimits {
  timeoutMs: number;
  maxCpuMs: number;
  maxMemoryBytes: number;
  maxOutputBytes: number;
}

/** The tools a renderer runs; sops stays in the hub, which holds its key. */
export type RemoteTool = 'kustomize' | 'helm';

interface JobHeader {
  tool: RemoteTool;
  args: string[];
  errorFile: string;
  renames: [string, string][];
  files: [string, number][];
  scratch: [string, number][];
  limits: JobLimits;
}

/** A decoded job, ready for ExecToolRunner once its arguments get real paths. */
export interface RemoteJob {
  tool: RemoteTool;
  args: string[];
  errorFile: string;
  renames: [string, string][];
  files: Map<string, Buffer>;
  scratchFiles: Record<string, Buffer>;
  limits: JobLimits;
}

/** A job the renderer refuses to run (a hub bug or another client): HTTP 400. */
export class BadJobError extends Error {}

/** The job body of a tool request. */
export function encodeJob(req: ToolRequest, limits: JobLimits): Buffer {
  if (req.tool === 'sops') throw new Error('sops runs in the hub, not in the renderer');
  if (req.secretFiles || req.env || req.explainExit)
    throw new Error(
      `a ${req.tool} run with secret files, environment or exit codes cannot be sent to the renderer`,
    );
  const files = [...req.files];
  const scratch = Object.entries(req.scratchFiles ?? {}).map(
    ([name, v]) => [name, typeof v === 'string' ? Buffer.from(v) : v] as const,
  );
  const header: JobHeader = {
    tool: req.tool,
    args: req.args(ROOT_TOKEN, SCRATCH_TOKEN),
    errorFile: req.errorFile,
    renames: (req.renames ?? []).map(([a, b]) => [a, b]),
    files: files.map(([p, b]) => [p, b.length]),
    scratch: scratch.map(([n, b]) => [n, b.length]),
    limits,
  };
  const head = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(head.length);
  return Buffer.concat([len, head, ...files.map(([, b]) => b), ...scratch.map(([, b]) => b)]);
}

/** Reads and checks a job body; throws BadJobError naming what is wrong. */
export function decodeJob(body: Buffer): RemoteJob {
  if (body.length < 4) throw new BadJobError('job body shorter than its header length');
  const headLen = body.readUInt32BE(0);
  if (headLen > MAX_HEADER_BYTES || 4 + headLen > body.length)
    throw new BadJobError(`job header of ${headLen} bytes does not fit the body`);
  let h: Partial<JobHeader>;
  try {
    h = JSON.parse(body.subarray(4, 4 + headLen).toString('utf8')) as Partial<JobHeader>;
  } catch {
    throw new BadJobError('job header is not JSON');
  }
  if (h.tool !== 'kustomize' && h.tool !== 'helm')
    throw new BadJobError('job tool must be kustomize or helm');
  const strings = (v: unknown, what: string, max: number): string[] => {
    if (!Array.isArray(v) || v.length > max || !v.every((s) => typeof s === 'string'))
      throw new BadJobError(`job ${what} must be a list of at most ${max} strings`);
    return v as string[];
  };
  const args = strings(h.args, 'args', MAX_ARGS);
  if (typeof h.errorFile !== 'string') throw new BadJobError('job errorFile must be a string');
  const renames = (Array.isArray(h.renames) ? h.renames : []).map((r) => {
    const [a, b] = strings(r, 'rename', 2);
    return [a ?? '', b ?? ''] as [string, string];
  });
  const sized = (v: unknown, what: string): [string, number][] => {
    if (!Array.isArray(v) || v.length > MAX_ENTRIES)
      throw new BadJobError(`job ${what} must be a list of at most ${MAX_ENTRIES} entries`);
    return v.map((e) => {
      const [name, size] = Array.isArray(e) ? (e as unknown[]) : [];
      if (typeof name !== 'string' || !Number.isSafeInteger(size) || (size as number) < 0)
        throw new BadJobError(`job ${what} entry must be [name, size]`);
      return [name, size as number];
    });
  };
  let at = 4 + headLen;
  const take = (size: number): Buffer => {
    if (at + size > body.length) throw new BadJobError('job body shorter than its files');
    const b = body.subarray(at, at + size);
    at += size;
    return b;
  };
  const files = new Map(sized(h.files, 'files').map(([p, n]) => [p, take(n)] as const));
  const scratchFiles: Record<string, Buffer> = {};
  for (const [name, n] of sized(h.scratch, 'scratch files')) scratchFiles[name] = take(n);
  if (at !== body.length) throw new BadJobError('job body longer than its files');
  return {
    tool: h.tool,
    args,
    errorFile: h.errorFile,
    renames,
    files,
    scratchFiles,
    limits: limitsOf(h.limits),
  };
}

// Limits come from the hub (the one authenticated client); checked for sanity only.
function limitsOf(v: unknown): JobLimits {
  const l = (v ?? {}) as Record<string, unknown>;
  const n = (key: keyof JobLimits, min: number, max: number): number => {
    const x = l[key];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max)
      throw new BadJobError(`job limits.${key} must be a whole number from ${min} to ${max}`);
    return x;
  };
  return {
    timeoutMs: n('timeoutMs', 1, 3_600_000),
    maxCpuMs: n('maxCpuMs', 1_000, 3_600_000),
    maxMemoryBytes: n('maxMemoryBytes', 128 * 1024 * 1024, 64 * 1024 ** 3),
    maxOutputBytes: n('maxOutputBytes', 1, 1024 ** 3),
  };
}

/** The job's arguments with the run's own paths. */
export function jobArgs(job: RemoteJob, root: string, scratch: string): string[] {
  return job.args.map((a) => a.split(ROOT_TOKEN).join(root).split(SCRATCH_TOKEN).join(scratch));
}

/** The error text of a render error as the renderer sends it: without the "file: " prefix the hub adds again. */
export function reasonOf(err: ValidationError): string {
  const prefix = err.file ? `${err.file}${err.line ? `:${err.line}` : ''}: ` : '';
  return prefix && err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
}
