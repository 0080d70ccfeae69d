// The queue between the logic and the wire for one session. Control messages (welcome,
// heartbeat, up-to-date) go out in order; desired states are not queued at all: there
// is one slot and the latest state wins, so a slow agent never receives a backlog of
// states it would only apply to overwrite.
import type { DesiredState } from '@flotilla/common';
import type { HubMessage } from '@flotilla/proto';

/** The next thing to write: a ready message or a desired state to encode and send. */
export type OutboxItem =
  { kind: 'message'; message: HubMessage } | { kind: 'state'; state: DesiredState };

/** Per-session outbox: FIFO for control messages, latest-wins slot for the desired state. */
export class Outbox {
  private readonly messages: HubMessage[] = [];
  private latest: DesiredState | undefined;

  /** Queues a control message. */
  pushMessage(message: HubMessage): void {
    this.messages.push(message);
  }

  /** Offers a desired state; replaces any state not yet taken. */
  offerState(state: DesiredState): void {
    this.latest = state;
  }

  /** True when a desired state waits that was offered after the last next(). */
  get hasState(): boolean {
    return this.latest !== undefined;
  }

  /** True when nothing waits. */
  get idle(): boolean {
    return this.messages.length === 0 && this.latest === undefined;
  }

  /** Takes the next item: control messages first, then the latest state. */
  next(): OutboxItem | undefined {
    const message = this.messages.shift();
    if (message) return { kind: 'message', message };
    const state = this.latest;
    this.latest = undefined;
    return state ? { kind: 'state', state } : undefined;
  }
}
