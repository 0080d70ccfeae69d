// Keeps the cluster's capabilities current: read at start, again every interval and on
// request (after an apply that changed something: it may have installed or removed a
// CRD), and handed on only when they changed. A failed reading keeps the last one.
import { LogFields, capabilitiesDigest, errorMessage, sleep } from '@flotilla/common';
import type { ClusterCapabilities, Logger } from '@flotilla/common';
import { boundCapabilities, readServedApis } from './probe.js';
import type { DiscoveryGet } from './probe.js';

const DROPPED_MESSAGE = {
  nothing: '',
  'custom kinds':
    'the cluster serves more API kinds than the hub accepts: reporting the kinds of custom groups by their group-versions only',
  kinds: 'the cluster serves more API kinds than the hub accepts: reporting group-versions only',
  everything: 'the cluster serves more API versions than the hub accepts: reporting none',
} as const;

/** Options of CapabilitiesMonitor. */
export interface CapabilitiesMonitorOptions {
  /** GETs against the API server (KubeClient.request). */
  get: DiscoveryGet;
  /** Time between readings (AgentConfig.capabilitiesIntervalMs, default 60 s). */
  intervalMs: number;
  logger: Logger;
  /** Called with new capabilities whenever a reading differs from the last one. */
  onChange: (capabilities: ClusterCapabilities) => void;
}

/** Reads the cluster's capabilities periodically and on request. */
export class CapabilitiesMonitor {
  private currentValue: ClusterCapabilities | undefined;
  private digest = '';
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private first: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private requested = false;
  private failing = false;
  private lastDropped = 'nothing';

  constructor(private readonly opts: CapabilitiesMonitorOptions) {}

  /** The last reading; undefined before the first one succeeded. */
  get current(): ClusterCapabilities | undefined {
    return this.currentValue;
  }

  /** Starts reading; resolves once the first reading succeeded or failed. */
  start(): Promise<void> {
    if (!this.loop) {
      this.first = this.readOnce();
      this.loop = this.first.then(() => this.run());
    }
    return this.first as Promise<void>;
  }

  /** Reads again soon (coalesced with a reading already asked for). */
  refresh(): void {
    this.requested = true;
    this.wake?.();
  }

  /** Stops reading; resolves when a reading in flight has ended. */
  async stop(): Promise<void> {
    this.stopping.abort();
    this.wake?.();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.stopping.signal;
    while (!signal.aborted) {
      if (!this.requested) {
        await Promise.race([
          sleep(this.opts.intervalMs, signal),
          new Promise<void>((resolve) => (this.wake = resolve)),
        ]);
        this.wake = undefined;
      }
      if (signal.aborted) break;
      this.requested = false;
      await this.readOnce();
    }
  }

  private async readOnce(): Promise<void> {
    const log = this.opts.logger;
    let caps: ClusterCapabilities;
    try {
      const bounded = boundCapabilities(await readServedApis(this.opts.get, this.stopping.signal));
      if (bounded.dropped !== this.lastDropped && bounded.dropped !== 'nothing')
        log.warn({ dropped: bounded.dropped }, DROPPED_MESSAGE[bounded.dropped]);
      this.lastDropped = bounded.dropped;
      if (bounded.dropped === 'everything') return;
      caps = bounded.capabilities;
      if (this.failing) log.info('reading cluster capabilities works again');
      this.failing = false;
    } catch (err) {
      if (this.stopping.signal.aborted) return;
      // Logged once per failing streak: the API server may be away for a while.
      if (!this.failing)
        log.warn(
          { [LogFields.err]: errorMessage(err) },
          'cannot read cluster capabilities; keeping the last reading',
        );
      this.failing = true;
      return;
    }
    const digest = capabilitiesDigest(caps);
    if (digest === this.digest) return;
    this.digest = digest;
    this.currentValue = caps;
    log.info(
      { kubeVersion: caps.kubeVersion, apiVersions: caps.apiVersions.length },
      'cluster capabilities read',
    );
    this.opts.onChange(caps);
  }
}
