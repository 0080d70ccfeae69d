// One timer for every session's heartbeat, instead of one per session. Sessions are
// spread over HEARTBEAT_SLOTS slots; each tick of the wheel looks at one slot, so every
// session is looked at once per heartbeat interval and a connect storm of 10,000 agents
// does not line 10,000 timers up to fire in the same turn of the event loop.
//
// A tick that comes late means the hub's own event loop was held (a long synchronous
// stretch, a GC pause, a starved core): what agents sent meanwhile is still in the
// sockets, read only after this turn's timers. Judging silence then would close sessions
// whose heartbeats are waiting to be read, so a late tick sends heartbeats but closes
// nothing; the next one, after the input was read, judges.

/** Slots of the wheel: a tick every interval / HEARTBEAT_SLOTS (10, so 1 s for 10 s). */
export const HEARTBEAT_SLOTS = 10;

/**
 * A tick later than this many tick periods, and at least STALL_MIN_MS, is a stall of the
 * hub's loop: it closes nothing.
 */
export const STALLED_TICK_PERIODS = 2;

/** Shortest lateness counted as a stall (250 ms): timer jitter on a busy machine is not one. */
export const STALL_MIN_MS = 250;

/** What the wheel drives: one session's heartbeat and silence check. */
export interface HeartbeatSubject {
  /** Sends a heartbeat when idle; closes a silent session when `judge` is true. */
  heartbeatTick(judge: boolean): void;
}

/** Options of HeartbeatWheel. */
export interface HeartbeatWheelOptions {
  /** Heartbeat interval (ms): each subject is ticked once per interval. */
  intervalMs: number;
  /** Slots (default HEARTBEAT_SLOTS). */
  slots?: number;
  now?: () => number;
}

/** Ticks every added subject once per interval from one timer; stop() when done. */
export class HeartbeatWheel {
  private readonly slots: Set<HeartbeatSubject>[];
  private readonly slotOf = new Map<HeartbeatSubject, Set<HeartbeatSubject>>();
  private readonly periodMs: number;
  private readonly now: () => number;
  private assign = 0;
  private cursor = 0;
  private lastTick = 0;
  private timer: NodeJS.Timeout | undefined;
  private stalls = 0;

  constructor(opts: HeartbeatWheelOptions) {
    const slots = Math.max(1, opts.slots ?? HEARTBEAT_SLOTS);
    this.slots = Array.from({ length: slots }, () => new Set<HeartbeatSubject>());
    this.periodMs = Math.max(1, Math.floor(opts.intervalMs / slots));
    this.now = opts.now ?? Date.now;
  }

  /** Subjects on the wheel. */
  get size(): number {
    return this.slotOf.size;
  }

  /** Ticks seen late (the hub's loop held) since start. */
  get stalledTicks(): number {
    return this.stalls;
  }

  /** Puts a subject on the wheel (the next free slot in turn); starts the timer with the first. */
  add(subject: HeartbeatSubject): void {
    if (this.slotOf.has(subject)) return;
    const slot = this.slots[this.assign++ % this.slots.length] as Set<HeartbeatSubject>;
    slot.add(subject);
    this.slotOf.set(subject, slot);
    if (!this.timer) {
      this.lastTick = this.now();
      this.timer = setInterval(() => this.tick(), this.periodMs);
      this.timer.unref();
    }
  }

  /** Takes a subject off the wheel; the timer stops with the last one. */
  remove(subject: HeartbeatSubject): void {
    const slot = this.slotOf.get(subject);
    if (!slot) return;
    slot.delete(subject);
    this.slotOf.delete(subject);
    if (this.slotOf.size === 0) this.stop();
  }

  /** Stops the timer (subjects added later start it again). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * One tick: the next slot's subjects, or after a late tick every slot that came due
   * meanwhile (all of them at most). Node runs a late interval once, not once per period
   * missed: one slot per tick made a hub whose loop turned every 3 s (a connect storm on a
   * loaded machine) send each session a heartbeat every 30 s, and its agents gave up on it.
   */
  private tick(): void {
    const now = this.now();
    const elapsed = now - this.lastTick;
    const judge = elapsed <= Math.max(STALLED_TICK_PERIODS * this.periodMs, STALL_MIN_MS);
    if (!judge) this.stalls++;
    this.lastTick = now;
    const due = judge ? 1 : Math.min(this.slots.length, Math.floor(elapsed / this.periodMs));
    for (let i = 0; i < due; i++) {
      const slot = this.slots[this.cursor] as Set<HeartbeatSubject>;
      this.cursor = (this.cursor + 1) % this.slots.length;
      for (const subject of [...slot]) subject.heartbeatTick(judge);
    }
  }
}
