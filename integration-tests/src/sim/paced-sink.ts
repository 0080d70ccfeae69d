// The simulated agents' NATS connections, opened at a bounded pace. Real agents dial NATS
// from their own machines; 2,500 of them in one simulator process, dialled at once, spent
// the process's CPU on handshakes that timed out (nats.js waits 20 s) and were dialled
// again — 10,274 timeouts in one worker of a 10,000-agent run, and ephemeral ports ran out
// (EADDRNOTAVAIL). Until its turn an agent's sink fails like the agent's own does while
// it dials ("not connected yet"): its publisher keeps the events and retries.
import { UnavailableError } from '@flotilla/common';
import type { EventSink } from '@flotilla/agent';

/** NATS connections each simulator worker opens per second (200: 2,500 agents in 12.5 s). */
export const NATS_DIALS_PER_SECOND = 200;

/** Hands out turns at most `perSecond` a second, in the order asked. */
export class Pacer {
  private next = 0;

  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
    private readonly sleep: (ms: number) => Promise<void> = (ms) =>
      new Promise((r) => setTimeout(r, ms)),
  ) {}

  /** Resolves at this caller's turn. */
  turn(): Promise<void> {
    const now = this.now();
    const at = Math.max(now, this.next);
    this.next = at + 1000 / this.perSecond;
    return at > now ? this.sleep(at - now) : Promise.resolve();
  }
}

/** A sink made by `open` at its turn of `pacer`; until then publishing fails as not connected yet. */
export function pacedSink(open: () => EventSink, pacer: Pick<Pacer, 'turn'>): EventSink {
  let inner: EventSink | undefined;
  let closed = false;
  const opened = pacer.turn().then(() => {
    if (!closed) inner = open();
  });
  return {
    publish: (subject, data, msgID) =>
      inner
        ? inner.publish(subject, data, msgID)
        : Promise.reject(new UnavailableError('NATS (not connected yet)')),
    async close() {
      closed = true;
      await opened;
      await inner?.close();
    },
  };
}
