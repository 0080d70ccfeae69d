// The fan-out limit the hub is compared with: a bare grpc-js server speaking just enough
// of AgentStream (hello → welcome) that writes already-encoded desired states to every
// open stream at once, respecting flow control as the hub does. No render, no status, no
// encoding on the clock: what is left is grpc-js and HTTP/2 writing the same bytes.
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { ServerDuplexStream } from '@grpc/grpc-js';
import {
  BundleMembers,
  GRPC_SERVER_OPTIONS,
  MAX_CHUNK_BYTES,
  encodeDesiredStateSync,
} from '@flotilla/hub';
import type { DesiredState } from '@flotilla/common';
import { PROTOCOL_VERSION, loadFlotillaProto } from '@flotilla/proto';
import type { AgentMessage__Output, HubMessage } from '@flotilla/proto';

type Call = ServerDuplexStream<AgentMessage__Output, HubMessage>;

/** A running bare server. */
export interface BareFanout {
  port: number;
  /** Streams that said hello, by cluster. */
  readonly streams: ReadonlyMap<string, Call>;
  /** Writes each cluster's encoded state to its stream; resolves when every write was accepted (drain awaited). */
  send(encoded: ReadonlyMap<string, HubMessage[]>): Promise<void>;
  stop(): Promise<void>;
}

/** Encodes desired states into the chunk messages the hub would send (generation 1): the same bytes, shared bundles as their own gzip members. */
export async function encodeAll(
  states: ReadonlyMap<string, DesiredState>,
): Promise<Map<string, HubMessage[]>> {
  const out = new Map<string, HubMessage[]>();
  const members = new BundleMembers();
  for (const [cluster, state] of states) {
    const e = encodeDesiredStateSync(state, MAX_CHUNK_BYTES, members);
    out.set(
      cluster,
      e.slices.map((data, index) => ({
        desired: {
          generation: 1,
          digest: e.digest,
          revision: e.revision,
          index,
          total: e.slices.length,
          data,
          compressedSize: e.compressedSize,
        },
      })),
    );
  }
  return out;
}

function writeAll(call: Call, messages: HubMessage[]): Promise<void> {
  return new Promise((resolve) => {
    let i = 0;
    const next = (): void => {
      while (i < messages.length) {
        if (call.destroyed) return resolve();
        if (!call.write(messages[i++] as HubMessage)) {
          call.once('drain', next);
          return;
        }
      }
      resolve();
    };
    next();
  });
}

/** Starts the bare server on 127.0.0.1 (plaintext, the hub's server options). */
export async function startBareFanout(): Promise<BareFanout> {
  const streams = new Map<string, Call>();
  const server = new Server(GRPC_SERVER_OPTIONS);
  server.addService(loadFlotillaProto().AgentStream.service, {
    Connect: (call: Call) => {
      call.on('data', (m: AgentMessage__Output) => {
        if (m.kind !== 'hello' || !m.hello) return;
        streams.set(m.hello.cluster, call);
        call.write({
          welcome: {
            session: m.hello.cluster,
            heartbeatIntervalMs: 10_000,
            protocolVersion: PROTOCOL_VERSION,
          },
        });
      });
      call.on('error', () => undefined);
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port,
    streams,
    async send(encoded) {
      await Promise.all(
        [...encoded].map(([cluster, messages]) => {
          const call = streams.get(cluster);
          return call ? writeAll(call, messages) : Promise.resolve();
        }),
      );
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const c of streams.values()) c.end();
        server.tryShutdown(() => resolve());
        setTimeout(() => (server.forceShutdown(), resolve()), 2_000).unref();
      }),
  };
}
