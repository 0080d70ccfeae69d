// Healing backs off per object, so the agent never fights another controller in a tight
// loop: the first heal in a window is immediate, each further one waits twice as long,
// and from `fightThreshold` heals within the window on it is reported as a fight.
import { durations } from '@flotilla/common';

/** Tunables of HealPolicy (durations in ms). */
export interface HealPolicyOptions {
  /** Heals counted per object within this window (default durations.fightWindow, 60 s). */
  windowMs?: number;
  /** Heals within the window that make a fight (default 5). */
  fightThreshold?: number;
  /** Delay of the second heal in a window, doubling after (default durations.healBackoffInitial, 100 ms). */
  initialMs?: number;
  /** Longest delay (default durations.healBackoffMax, 5 min). */
  maxMs?: number;
}

/** Defaults of the drift engine that are not durations. */
export const DRIFT_DEFAULTS = { fightThreshold: 5, maxChanges: 20 } as const;

/** The decision for one heal. */
export interface HealDecision {
  /** Heals within the window including this one. */
  heals: number;
  fight: boolean;
  delayMs: number;
}

/** Per-object heal history. */
export class HealPolicy {
  private readonly history = new Map<string, number[]>();
  private readonly windowMs: number;
  private readonly fightThreshold: number;
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(opts: HealPolicyOptions = {}) {
    this.windowMs = opts.windowMs ?? durations.fightWindow;
    this.fightThreshold = opts.fightThreshold ?? DRIFT_DEFAULTS.fightThreshold;
    this.initialMs = opts.initialMs ?? durations.healBackoffInitial;
    this.maxMs = opts.maxMs ?? durations.healBackoffMax;
  }

  /** Records a heal of `key` at `now` and says how long to wait before it. */
  next(key: string, now = Date.now()): HealDecision {
    const recent = (this.history.get(key) ?? []).filter((t) => now - t < this.windowMs);
    recent.push(now);
    this.history.set(key, recent);
    const heals = recent.length;
    const delayMs = heals <= 1 ? 0 : Math.min(this.maxMs, this.initialMs * 2 ** (heals - 2));
    return { heals, fight: heals >= this.fightThreshold, delayMs };
  }

  /** Forgets an object (no longer managed). */
  forget(key: string): void {
    this.history.delete(key);
  }
}
