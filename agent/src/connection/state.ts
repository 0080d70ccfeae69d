// The connection lifecycle as an explicit state machine: every transition is checked
// against the table and logged, so "why is the agent not connected" is in the log.
import type { Logger } from '@flotilla/common';

/** States of the hub connection. */
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed';

/** Allowed transitions; closed is final. */
export const TRANSITIONS: Readonly<Record<ConnectionState, readonly ConnectionState[]>> = {
  idle: ['connecting', 'closed'],
  connecting: ['connected', 'backoff', 'closed'],
  connected: ['backoff', 'closed'],
  backoff: ['connecting', 'closed'],
  closed: [],
};

/** Holds the current state; refuses transitions the table does not allow. */
export class ConnectionStateMachine {
  private current: ConnectionState = 'idle';
  private readonly listeners = new Set<(s: ConnectionState) => void>();

  constructor(private readonly logger: Logger) {}

  /** The current state. */
  get state(): ConnectionState {
    return this.current;
  }

  /** Moves to `to`; returns false (and logs) when the transition is not allowed. */
  transition(to: ConnectionState, reason: string): boolean {
    const from = this.current;
    if (!TRANSITIONS[from].includes(to)) {
      this.logger.error({ from, to, reason }, 'illegal hub connection transition refused');
      return false;
    }
    this.current = to;
    this.logger.debug({ from, to, reason }, 'hub connection state');
    for (const l of this.listeners) l(to);
    return true;
  }

  /** Calls fn on every transition; returns an unsubscribe function. */
  onChange(fn: (s: ConnectionState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
