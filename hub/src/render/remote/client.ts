// The hub's side of the renderer: a ToolRunner that sends kustomize and helm runs to the
// render server (render.remote) and keeps sops local (the hub holds its key; the
// renderer must hold none, so it gets decrypted inputs over mutual TLS instead).
//
// A run the renderer answers with a failure is that bundle's render error, as a local
// run's would be. A renderer that cannot be reached is a RendererUnavailableError: also
// the bundle's error (the cluster keeps the bundle's last rendering), but never cached,
// so the next render, which the hub starts when its probe sees the renderer back, runs
// the job again.
import { readFileSync } from 'node:fs';
import { connect } from 'node:http2';
import { isIP } from 'node:net';
import type { ClientHttp2Session } from 'node:http2';
import { ValidationError, errorMessage } from '@flotilla/common';
import type { ToolRequest, ToolRunner } from '../tools.js';
import { DEFAULT_MAX_JOB_BYTES, HEALTH_PATH, RUN_PATH, encodeJob } from './protocol.js';
import type { JobLimits } from './protocol.js';

/** render.remote of the hub config: where the renderer is and the hub's TLS material for it. */
export interface RemoteRendererSettings {
  /** host:port of the render server. */
  address: string;
  /** CA of the renderer's certificate (and of the hub's client certificate). */
  caFile: string;
  /** The hub's client certificate and key for the renderer. */
  certFile: string;
  keyFile: string;
  /** Name the renderer's certificate must carry (default: the address's host). */
  serverName?: string;
  /** Largest job body the hub sends (default DEFAULT_MAX_JOB_BYTES, 128 MiB). */
  maxJobBytes?: number;
}

/** The renderer could not be reached or did not answer: transient, never cached. */
export class RendererUnavailableError extends ValidationError {
  /** Marks errors the render caches must not keep. */
  readonly transient = true;
}

/** True for a render error that goes away by itself (the renderer unreachable). */
export function isTransientRenderError(err: unknown): boolean {
  return err instanceof RendererUnavailableError;
}

// Jobs one hub worker has in flight: the server runs as many as it has cores and queues
// the rest, so more would only hold bodies in memory on both sides.
const MAX_IN_FLIGHT = 8;

/** Runs kustomize and helm on the renderer, sops with `local`. */
export class RemoteToolRunner implements ToolRunner {
  private session: ClientHttp2Session | undefined;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    private readonly settings: RemoteRendererSettings,
    private readonly limits: JobLimits,
    private readonly local: ToolRunner,
  ) {}

  async run(req: ToolRequest): Promise<string> {
    if (req.tool === 'sops') return this.local.run(req);
    const body = encodeJob(req, this.limits);
    const max = this.settings.maxJobBytes ?? DEFAULT_MAX_JOB_BYTES;
    if (body.length > max)
      throw new ValidationError(
        `the ${req.tool} inputs are ${body.length} bytes, more than the ${max} the renderer takes (render.remote.maxJobBytes)`,
        { file: req.errorFile },
      );
    if (this.inFlight >= MAX_IN_FLIGHT)
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.inFlight++;
    try {
      return await this.send(req, body);
    } finally {
      this.inFlight--;
      this.waiting.shift()?.();
    }
  }

  /** Closes the connection to the renderer. */
  close(): void {
    this.session?.close();
    this.session = undefined;
  }

  private async send(req: ToolRequest, body: Buffer): Promise<string> {
    // Queueing on the renderer counts too: a generous deadline, still bounded.
    const deadline = 2 * this.limits.timeoutMs + 30_000;
    let res: { status: number; body: Buffer };
    try {
      res = await request(
        this.connection(),
        'POST',
        RUN_PATH,
        body,
        deadline,
        this.limits.maxOutputBytes + 64 * 1024,
      );
    } catch (err) {
      this.close();
      throw new RendererUnavailableError(
        `the renderer at ${this.settings.address} is unavailable: ${errorMessage(err)}; the bundle keeps its last rendering until the renderer is back`,
        { file: req.errorFile, cause: err },
      );
    }
    if (res.status === 200) return res.body.toString('utf8');
    const message = messageOf(res.body);
    if (res.status === 422) throw new ValidationError(message, { file: req.errorFile });
    throw new ValidationError(
      `the renderer refused the ${req.tool} run (HTTP ${res.status}): ${message}`,
      {
        file: req.errorFile,
      },
    );
  }

  private connection(): ClientHttp2Session {
    if (this.session && !this.session.closed && !this.session.destroyed) return this.session;
    const s = openSession(this.settings);
    // An idle connection must not keep the render worker alive.
    s.unref();
    s.on('error', () => undefined);
    s.on('close', () => {
      if (this.session === s) this.session = undefined;
    });
    s.on('goaway', () => {
      if (this.session === s) this.session = undefined;
    });
    this.session = s;
    return s;
  }
}

/** Asks the renderer whether it serves: resolves, or rejects with why not (the hub's probe). */
export async function probeRenderer(
  settings: RemoteRendererSettings,
  timeoutMs: number,
): Promise<void> {
  const s = openSession(settings);
  s.on('error', () => undefined);
  try {
    const res = await request(s, 'GET', HEALTH_PATH, undefined, timeoutMs, 64 * 1024);
    if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${messageOf(res.body)}`);
  } finally {
    s.destroy();
  }
}

// Files are read at every new connection, so renewed certificates are picked up.
function openSession(settings: RemoteRendererSettings): ClientHttp2Session {
  const host = hostOf(settings.address);
  return connect(`https://${settings.address}`, {
    ca: readFileSync(settings.caFile),
    cert: readFileSync(settings.certFile),
    key: readFileSync(settings.keyFile),
    // An IP address is checked against the certificate's IP names; SNI takes host names only.
    ...(settings.serverName || !isIP(host) ? { servername: settings.serverName ?? host } : {}),
    minVersion: 'TLSv1.2',
  });
}

/** The host of host:port ([v6]:port too). */
export function hostOf(address: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(address) ?? /^([^:]+):\d+$/.exec(address);
  return m?.[1] ?? address;
}

function messageOf(body: Buffer): string {
  try {
    const m = (JSON.parse(body.toString('utf8')) as { message?: unknown }).message;
    if (typeof m === 'string') return m.slice(0, 64 * 1024);
  } catch {
    // not JSON: shown as text below
  }
  return body.toString('utf8', 0, Math.min(body.length, 1024)) || 'no message';
}

function request(
  session: ClientHttp2Session,
  method: string,
  path: string,
  body: Buffer | undefined,
  timeoutMs: number,
  maxReply: number,
): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ':method': method,
      ':path': path,
      ...(body
        ? { 'content-type': 'application/octet-stream', 'content-length': body.length }
        : {}),
    });
    const timer = setTimeout(() => {
      stream.close();
      reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`));
    }, timeoutMs);
    let status = 0;
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('response', (headers) => (status = Number(headers[':status'] ?? 0)));
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxReply) {
        clearTimeout(timer);
        stream.close();
        reject(new Error(`the renderer's answer is larger than ${maxReply} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    stream.on('end', () => {
      clearTimeout(timer);
      if (status === 0) reject(new Error('the connection closed without an answer'));
      else resolve({ status, body: Buffer.concat(chunks, size) });
    });
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    stream.end(body);
  });
}
