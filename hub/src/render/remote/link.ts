// The hub's view of the renderer: probed every durations.rendererProbeInterval, so the
// hub can say it is degraded (GET /api/v1/hub, flotilla_hub_degraded, `flotilla status`)
// while the renderer is away, and render again when it is back (bundles that failed for
// want of it then get their new rendering).
import { durations, errorMessage } from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import { probeRenderer } from './client.js';
import type { RemoteRendererSettings } from './client.js';

/** Probes the renderer and remembers since when it is unreachable. */
export class RendererLink {
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  /** When the renderer was first found unreachable (this run of failures); undefined while it serves. */
  downSince: Date | undefined;
  /** Why the last probe failed. */
  lastError = '';

  constructor(
    private readonly settings: RemoteRendererSettings,
    private readonly opts: {
      logger?: Logger;
      /** Called when a probe succeeds after failures. */
      onBack?: () => void;
      intervalMs?: number;
    } = {},
  ) {}

  /** Probes now and then every interval. */
  start(): void {
    void this.probe();
    this.timer = setInterval(
      () => void this.probe(),
      this.opts.intervalMs ?? durations.rendererProbeInterval,
    );
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** One probe; updates downSince. */
  async probe(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      await probeRenderer(this.settings, durations.rendererProbeTimeout);
      if (this.downSince) {
        this.opts.logger?.info(
          { address: this.settings.address },
          'renderer reachable again; rendering again',
        );
        this.downSince = undefined;
        this.lastError = '';
        this.opts.onBack?.();
      }
    } catch (err) {
      this.lastError = errorMessage(err);
      if (!this.downSince) {
        this.downSince = new Date();
        this.opts.logger?.warn(
          { address: this.settings.address, err: this.lastError },
          'renderer unreachable: Kustomize and Helm bundles keep their last rendering',
        );
      }
    } finally {
      this.probing = false;
    }
  }
}
