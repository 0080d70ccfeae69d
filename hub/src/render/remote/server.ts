// The render server (`flotilla renderer`): runs kustomize and helm for the hub in a
// process of its own, as its own user, holding no credential but its TLS key. It accepts
// only the hub: mutual TLS against a CA of its own (render.remote in docs/install.md),
// and the client certificate's common name must be RENDERER_CLIENT_NAME. Each job runs
// with ExecToolRunner as the hub would run it locally: a temp dir holding only the job's
// files, rlimits, a timeout, an output limit, and this host's sandbox level.
import { createSecureServer } from 'node:http2';
import type {
  Http2SecureServer,
  Http2ServerRequest,
  Http2ServerResponse,
  ServerHttp2Session,
} from 'node:http2';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import type { TLSSocket } from 'node:tls';
import { LogFields, ValidationError, errorMessage } from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import { ExecToolRunner } from '../tools.js';
import type { ToolSandbox } from '../sandbox.js';
import {
  BadJobError,
  DEFAULT_MAX_JOB_BYTES,
  HEALTH_PATH,
  RENDERER_CLIENT_NAME,
  RUN_PATH,
  decodeJob,
  jobArgs,
  reasonOf,
} from './protocol.js';

/** Settings of the render server. */
export interface RenderServerOptions {
  host: string;
  port: number;
  /** The server's certificate and key, and the CA its one client's certificate must chain to (PEM). */
  certPem: string;
  keyPem: string;
  clientCaPem: string;
  /** The kustomize and helm programs (default: on PATH). */
  kustomizePath?: string;
  helmPath?: string;
  /** Where jobs run on this host (resolveSandbox). */
  sandbox: ToolSandbox;
  /** Largest job body (default DEFAULT_MAX_JOB_BYTES). */
  maxJobBytes?: number;
  /** Jobs run at once; others wait (default: the number of cores). */
  concurrency?: number;
  logger?: Logger;
}

/** A running render server. */
export interface RunningRenderServer {
  /** host:port it listens on. */
  address: string;
  stop(): Promise<void>;
}

// Streams one hub connection may hold: jobs in flight plus those waiting for a slot, so
// the bodies held in memory are bounded (with maxJobBytes).
const MAX_STREAMS = 16;

/** Starts the render server. */
export async function startRenderServer(opts: RenderServerOptions): Promise<RunningRenderServer> {
  const maxJobBytes = opts.maxJobBytes ?? DEFAULT_MAX_JOB_BYTES;
  const slots = new Slots(opts.concurrency ?? Math.max(1, availableParallelism()));
  const log = opts.logger?.child({ [LogFields.component]: 'renderer' });
  const server: Http2SecureServer = createSecureServer(
    {
      cert: opts.certPem,
      key: opts.keyPem,
      ca: opts.clientCaPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
      allowHTTP1: false,
      settings: { maxConcurrentStreams: MAX_STREAMS },
    },
    (req, res) => {
      void handle(req, res).catch((err: unknown) => {
        log?.error({ err: errorMessage(err) }, 'render job failed unexpectedly');
        reply(res, 500, { message: 'internal error of the renderer' });
      });
    },
  );
  const sessions = new Set<ServerHttp2Session>();
  server.on('session', (s: ServerHttp2Session) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  // A client without a certificate of the CA never gets past the handshake.
  server.on('tlsClientError', (err) =>
    log?.warn({ err: errorMessage(err) }, 'refused a connection: no valid client certificate'),
  );

  async function handle(req: Http2ServerRequest, res: Http2ServerResponse): Promise<void> {
    const peer = (req.socket as TLSSocket).getPeerCertificate?.();
    if (peer?.subject?.CN !== RENDERER_CLIENT_NAME) {
      log?.warn({ cn: peer?.subject?.CN }, 'refused a client certificate that is not the hub');
      return reply(res, 403, { message: `only ${RENDERER_CLIENT_NAME} may use the renderer` });
    }
    if (req.method === 'GET' && req.url === HEALTH_PATH) return reply(res, 200, { ok: true });
    if (req.method !== 'POST' || req.url !== RUN_PATH)
      return reply(res, 404, { message: `no such endpoint ${req.method} ${req.url}` });
    const body = await readBounded(req, maxJobBytes);
    if (!body)
      return reply(res, 413, {
        message: `job larger than ${maxJobBytes} bytes (flotilla renderer --max-job-bytes)`,
      });
    let job;
    try {
      job = decodeJob(body);
    } catch (err) {
      if (err instanceof BadJobError) return reply(res, 400, { message: err.message });
      throw err;
    }
    const runner = new ExecToolRunner({
      ...(opts.kustomizePath !== undefined ? { kustomizePath: opts.kustomizePath } : {}),
      ...(opts.helmPath !== undefined ? { helmPath: opts.helmPath } : {}),
      timeoutMs: job.limits.timeoutMs,
      maxCpuMs: job.limits.maxCpuMs,
      maxMemoryBytes: job.limits.maxMemoryBytes,
      maxOutputBytes: job.limits.maxOutputBytes,
      sandbox: opts.sandbox,
    });
    const t0 = performance.now();
    await slots.take();
    try {
      const out = await runner.run({
        tool: job.tool,
        files: job.files,
        scratchFiles: job.scratchFiles,
        args: (root, scratch) => jobArgs(job, root, scratch),
        errorFile: job.errorFile,
        renames: job.renames,
      });
      log?.info(
        { tool: job.tool, file: job.errorFile, ms: Math.round(performance.now() - t0) },
        'render job done',
      );
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      res.end(Buffer.from(out, 'utf8'));
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      log?.info({ tool: job.tool, file: job.errorFile }, 'render job failed');
      reply(res, 422, { message: reasonOf(err) });
    } finally {
      slots.give();
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  const address = `${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  log?.info({ address, sandbox: opts.sandbox.level }, 'renderer listening');
  return {
    address,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Sessions of a hub that stays connected would keep close() waiting.
        for (const s of sessions) s.destroy();
      }),
  };
}

function reply(res: Http2ServerResponse, status: number, body: object): void {
  if (res.headersSent || res.stream.destroyed) return;
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

// The body, or undefined when it is larger than max (the stream is then reset).
async function readBounded(req: Http2ServerRequest, max: number): Promise<Buffer | undefined> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > max) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size);
}

// Jobs run at most `n` at once.
class Slots {
  private used = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(private readonly n: number) {}
  async take(): Promise<void> {
    if (this.used >= this.n) await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.used++;
  }
  give(): void {
    this.used--;
    this.waiting.shift()?.();
  }
}
