// The fleet simulator: N simulated agents (sim-agent.ts) spread over P child processes,
// so their CPU is not the caller's and a benchmark can tell the hub's cost from the
// simulator's. The parent collects every agent's records (sessions, desired states
// received, applies) and answers questions about them; waits are driven by arriving
// records, never by sleeping.
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileSimConfig, simClusterName } from './config.js';
import type { SimConfig, SimOptions } from './config.js';
import type { FromWorker, SimRecord, ToWorker, WorkerStats } from './protocol.js';

/** What the parent knows about one agent, from its records. */
export interface AgentView {
  name: string;
  connected: boolean;
  /** Sessions welcomed so far. */
  sessions: number;
  appliedDigest: string;
  appliedRevision: string;
  /** Newest revision the hub told it about (desired state or up-to-date). */
  revision: string;
  /** Desired states received whose digest the agent had already applied. */
  redundant: number;
  /** Desired states received in all. */
  desired: number;
  /** How far the agent's clock is off (ms, + ahead), from its first session. */
  clockSkewMs: number;
}

/** The workers' stats summed (CPU in ms), with each worker's own. */
export interface SimStats {
  cpuMs: number;
  rssBytes: number;
  published: number;
  /** Of published, by event kind. */
  publishedByKind: Record<string, number>;
  pending: number;
  dropped: number;
  connected: number;
  workers: WorkerStats[];
}

/** How long a worker may take to start its agents (registrations included): 10 min. */
const START_TIMEOUT_MS = 600_000;

interface Worker {
  child: ChildProcess;
  names: string[];
}

type Waiter = { check: () => boolean; resolve: () => void; reject: (e: Error) => void };

/** A running simulation; Simulator.start(), then stop(). */
export class Simulator {
  private readonly views = new Map<string, AgentView>();
  private readonly all: SimRecord[] = [];
  /**
   * The desired and up-to-date records of each revision, in arrival order: receivedAt is
   * asked at every batch of records while a fan-out is awaited, and scanning every record
   * (tens of thousands at 10,000 agents) each time cost the benchmark a core's share.
   */
  private readonly byRevision = new Map<string, SimRecord[]>();
  private readonly waiters = new Set<Waiter>();
  private readonly replies = new Map<number, (m: Extract<FromWorker, { t: 'reply' }>) => void>();
  private nextId = 1;
  private failure: Error | undefined;
  private stopped = false;

  private constructor(
    readonly config: SimConfig,
    readonly names: readonly string[],
    private readonly workers: Worker[],
  ) {
    for (const name of names)
      this.views.set(name, {
        name,
        connected: false,
        sessions: 0,
        appliedDigest: '',
        appliedRevision: '',
        revision: '',
        redundant: 0,
        desired: 0,
        clockSkewMs: 0,
      });
  }

  /** Validates options, forks the workers and resolves once every agent was started (not necessarily connected). */
  static async start(options: SimOptions): Promise<Simulator> {
    const config = compileSimConfig(
      options,
      options.logDir ?? (await mkdtemp(join(tmpdir(), 'flotilla-sim-'))),
    );
    const names = Array.from({ length: config.agents }, (_, i) =>
      simClusterName(config.firstIndex + i, config.prefix),
    );
    await mkdir(config.logDir, { recursive: true });
    const script = fileURLToPath(new URL('./worker.js', import.meta.url));
    const workers: Worker[] = [];
    for (let w = 0; w < config.processes; w++) {
      const log = await open(join(config.logDir, `sim-worker-${w}.stderr.log`), 'a');
      // No inherited execArgv: a parent run with --cpu-prof must not profile its workers.
      const child = fork(script, [], { stdio: ['ignore', 'ignore', log.fd, 'ipc'], execArgv: [] });
      await log.close();
      workers.push({ child, names: names.filter((_, i) => i % config.processes === w) });
    }
    const sim = new Simulator(config, names, workers);
    await sim.boot();
    return sim;
  }

  private async boot(): Promise<void> {
    const ready = this.workers.map(
      (w, i) =>
        new Promise<void>((resolve, reject) => {
          w.child.on('message', (m: FromWorker) => {
            if (m.t === 'ready') resolve();
            else if (m.t === 'fatal') reject(new Error(`simulator worker ${i}: ${m.message}`));
            this.onMessage(m);
          });
          w.child.once('exit', (code, signal) => {
            const err = new Error(
              `simulator worker ${i} exited (${code ?? signal}); see ${this.config.logDir}`,
            );
            reject(err);
            if (!this.stopped) this.fail(err);
          });
          this.send(w, { t: 'start', worker: i, config: this.config, agents: w.names });
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`simulator workers not started in ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([Promise.all(ready), timeout]);
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private send(w: Worker, msg: ToWorker): void {
    if (w.child.connected) w.child.send(msg);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiters) w.reject(err);
    this.waiters.clear();
  }

  private onMessage(m: FromWorker): void {
    if (m.t === 'reply') {
      this.replies.get(m.id)?.(m);
      this.replies.delete(m.id);
      return;
    }
    if (m.t !== 'records') return;
    for (const r of m.records) this.fold(r);
    for (const w of [...this.waiters]) {
      if (!w.check()) continue;
      this.waiters.delete(w);
      w.resolve();
    }
  }

  private fold(r: SimRecord): void {
    this.all.push(r);
    const v = this.views.get(r.agent);
    if (!v) return;
    switch (r.k) {
      case 'connected':
        v.connected = true;
        v.sessions++;
        v.clockSkewMs = r.clockSkewMs;
        break;
      case 'disconnected':
        v.connected = false;
        break;
      case 'desired':
        this.indexByRevision(r.revision, r);
        v.desired++;
        if (r.redundant) v.redundant++;
        v.revision = r.revision;
        break;
      case 'up-to-date':
        this.indexByRevision(r.revision, r);
        v.revision = r.revision;
        if (r.digest === v.appliedDigest) v.appliedRevision = r.revision;
        break;
      case 'applied':
        if (r.result === 'applied') {
          v.appliedDigest = r.digest;
          v.appliedRevision = r.revision;
        }
        break;
    }
  }

  private indexByRevision(revision: string, r: SimRecord): void {
    const list = this.byRevision.get(revision);
    if (list) list.push(r);
    else this.byRevision.set(revision, [r]);
  }

  /** Every record so far, in arrival order (per agent, in the order they happened). */
  records(): readonly SimRecord[] {
    return this.all;
  }

  /** One agent as its records show it. */
  agent(name: string): AgentView | undefined {
    return this.views.get(name);
  }

  /** Every agent's view. */
  agents(): AgentView[] {
    return [...this.views.values()];
  }

  /**
   * When each agent first had `revision` (a desired state of it, or up-to-date at it) at
   * or after `sinceMs`; agents that did not have it yet are absent.
   */
  receivedAt(revision: string, sinceMs = 0): Map<string, number> {
    const out = new Map<string, number>();
    for (const r of this.byRevision.get(revision) ?? []) {
      if (r.at < sinceMs || out.has(r.agent)) continue;
      out.set(r.agent, r.at);
    }
    return out;
  }

  /** Resolves once check() holds (checked now and at every batch of records); rejects after timeoutMs naming `what`. */
  waitUntil(check: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`simulator: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const waiter: Waiter = {
        check,
        resolve: () => (clearTimeout(timer), resolve()),
        reject: (e) => (clearTimeout(timer), reject(e)),
      };
      this.waiters.add(waiter);
    });
  }

  /** Resolves once every agent has a welcomed session. */
  allConnected(timeoutMs = 60_000): Promise<void> {
    return this.waitUntil(
      () => this.agents().every((a) => a.connected),
      'every simulated agent connected',
      timeoutMs,
    );
  }

  /** Resolves once every agent applied a state of `revision` (or was told it is current at it). */
  allAt(revision: string, timeoutMs = 60_000): Promise<void> {
    return this.waitUntil(
      () => this.agents().every((a) => a.appliedRevision === revision),
      `every simulated agent at ${revision.slice(0, 12)}`,
      timeoutMs,
    );
  }

  private ask(w: Worker, msg: ToWorker & { id: number }): Promise<WorkerStats | undefined> {
    return new Promise((resolve, reject) => {
      this.replies.set(msg.id, (m) =>
        m.error ? reject(new Error(`simulator worker: ${m.error}`)) : resolve(m.stats),
      );
      this.send(w, msg);
    });
  }

  private async askAll(make: (id: number) => ToWorker & { id: number }): Promise<SimStats> {
    const list = await Promise.all(this.workers.map((w) => this.ask(w, make(this.nextId++))));
    const workers = list.filter((s): s is WorkerStats => s !== undefined);
    const sum = (f: (s: WorkerStats) => number): number => workers.reduce((n, s) => n + f(s), 0);
    return {
      cpuMs: sum((s) => s.cpuUserUs + s.cpuSystemUs) / 1000,
      rssBytes: sum((s) => s.rssBytes),
      published: sum((s) => s.published),
      publishedByKind: workers.reduce<Record<string, number>>((acc, s) => {
        for (const [k, n] of Object.entries(s.publishedByKind)) acc[k] = (acc[k] ?? 0) + n;
        return acc;
      }, {}),
      pending: sum((s) => s.pending),
      dropped: sum((s) => s.dropped),
      connected: sum((s) => s.connected),
      workers,
    };
  }

  /** The workers' CPU (cumulative), memory and publishing counters now. */
  stats(): Promise<SimStats> {
    return this.askAll((id) => ({ t: 'stats', id }));
  }

  /** Every agent publishes `perAgent` events (drift detected/corrected pairs) at once. */
  async burst(perAgent: number): Promise<void> {
    await this.askAll((id) => ({ t: 'burst', id, perAgent }));
  }

  /** Process ids of the worker processes still running (for RSS figures). */
  get pids(): number[] {
    return this.workers.flatMap((w) =>
      w.child.pid !== undefined && w.child.exitCode === null ? [w.child.pid] : [],
    );
  }

  /** Stops every agent (streams closed, events flushed briefly) and the workers; returns their final stats. */
  async stop(): Promise<SimStats | undefined> {
    if (this.stopped) return undefined;
    this.stopped = true;
    const live = this.workers.filter((w) => w.child.connected);
    let final: SimStats | undefined;
    try {
      if (live.length === this.workers.length)
        final = await this.askAll((id) => ({ t: 'stop', id }));
    } finally {
      await Promise.all(
        this.workers.map(async (w) => {
          if (w.child.exitCode !== null || w.child.signalCode !== null) return;
          const exited = new Promise((r) => w.child.once('exit', r));
          // The worker exits when its IPC channel closes.
          if (w.child.connected) w.child.disconnect();
          else w.child.kill();
          const timer = setTimeout(() => w.child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(timer);
        }),
      );
    }
    return final;
  }
}
