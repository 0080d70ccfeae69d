// Run in its own process by grpc-server.test.ts, never by hand: the hub's gRPC server (its
// real options) with an AgentStream answering each message with a heartbeat, in a process
// whose event loop the test can hold, as a loaded hub's is held by long synchronous work.
import { startGrpcServer } from './grpc-server.js';

/** Parent → fixture: hold the loop `ms` at a time, `times` times, with one turn of the loop between. */
export interface HoldRequest {
  holdMs: number;
  times: number;
}

/** Fixture → parent. */
export type FixtureMessage = { t: 'listening'; port: number } | { t: 'held' };

const asleep = new Int32Array(new SharedArrayBuffer(4));

const server = await startGrpcServer('127.0.0.1:0', {
  agentStream: {
    Connect: (call) => {
      call.on('data', () => call.write({ heartbeat: { sentAtMs: Date.now() } }));
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  },
  fleet: {},
});
const send = (m: FixtureMessage): void => void process.send?.(m);
send({ t: 'listening', port: server.port });

process.on('message', (m: HoldRequest) => {
  let left = m.times;
  const hold = (): void => {
    // Blocks the thread without spending CPU; timers and sockets wait, as behind a long task.
    Atomics.wait(asleep, 0, 0, m.holdMs);
    // setImmediate, not a timer: the loop turns once (due timers run, the sockets are read
    // without waiting) before the next hold.
    if (--left > 0) setImmediate(hold);
    else send({ t: 'held' });
  };
  hold();
});
// Ends with the test that started it.
process.on('disconnect', () => process.exit(0));
