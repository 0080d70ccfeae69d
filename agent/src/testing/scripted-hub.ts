// A scripted hub for tests: a real gRPC server speaking our AgentStream protocol, whose
// behaviour each test sets through onStream.
import { gzipSync } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import type { DesiredState } from '@flotilla/common';
import { loadFlotillaProto } from '@flotilla/proto';
import type { AgentMessage__Output, AgentStreamHandlers, HubMessage } from '@flotilla/proto';

/** The server side of one agent stream. */
export type ServerCall = grpc.ServerDuplexStream<AgentMessage__Output, HubMessage>;

/** A scripted hub: each new stream is recorded and handed to `onStream`. */
export class ScriptedHub {
  /** The gRPC server; forceShutdown() it after the tests. */
  readonly server = new grpc.Server();
  port = 0;
  streams: { call: ServerCall; received: AgentMessage__Output[]; auth: string }[] = [];
  onStream: (call: ServerCall) => void = () => {};

  /** Binds to a loopback port (default: a free one). */
  async start(port = 0): Promise<void> {
    const handlers: AgentStreamHandlers = {
      Connect: (call) => {
        const s = {
          call,
          received: [] as AgentMessage__Output[],
          auth: String(call.metadata.get('authorization')[0] ?? ''),
        };
        this.streams.push(s);
        call.on('data', (m: AgentMessage__Output) => s.received.push(m));
        call.on('error', () => {});
        this.onStream(call);
      },
    };
    this.server.addService(loadFlotillaProto().AgentStream.service, handlers);
    this.port = await new Promise((resolve, reject) =>
      this.server.bindAsync(
        `127.0.0.1:${port}`,
        grpc.ServerCredentials.createInsecure(),
        (err, port) => (err ? reject(err) : resolve(port)),
      ),
    );
  }
}

/** Sends a state as the hub does: gzip(JSON), cut into chunks of `size` bytes. */
export function sendState(
  call: ServerCall,
  state: DesiredState,
  generation: number,
  size = 1024 * 1024,
  digest = state.digest,
): void {
  const payload = gzipSync(JSON.stringify(state));
  const total = Math.ceil(payload.length / size);
  for (let index = 0; index < total; index++) {
    call.write({
      desired: {
        generation,
        digest,
        revision: state.revision,
        index,
        total,
        data: payload.subarray(index * size, (index + 1) * size),
        compressedSize: payload.length,
      },
    });
  }
}

/** Polls fn until it returns a value (not null/undefined/false). */
export async function until<T>(
  fn: () => T | null | undefined | false | Promise<T | null | undefined | false>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Waits for a clean-up step for at most `ms` (default 15 s): a test's after hook must end
 * even when what it stops hangs, or a failed test leaves its process running.
 */
export async function within<T>(step: Promise<T>, what: string, ms = 15_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([step, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
