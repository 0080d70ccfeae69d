// The memory floor the hub's RSS per connected cluster is compared with: the bare grpc-js
// server of bare-fanout.ts (the hub's server options, hello → welcome) in a process of its
// own, holding idle agent streams and sending each a heartbeat per interval as the hub
// does, so the agents' watchdogs keep them. Forked by the fleet benchmark; it sends
// { port } once listening and exits when its parent goes.
import { startBareFanout } from './bare-fanout.js';

/** Heartbeat interval of the bare server (10 s, the hub's default). */
const HEARTBEAT_MS = 10_000;

const bare = await startBareFanout();
const timer = setInterval(() => {
  const now = Date.now();
  for (const call of bare.streams.values())
    if (!call.destroyed) call.write({ heartbeat: { sentAtMs: now } });
}, HEARTBEAT_MS);
process.send?.({ port: bare.port });
process.on('disconnect', () => {
  clearInterval(timer);
  void bare.stop().then(() => process.exit(0));
});
