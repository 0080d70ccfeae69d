// Builds the notifier from the compiled config; URLs named by urlEnv are read here, at
// start, from the environment the hub was given (never at import time).
import type { Logger } from '@flotilla/common';
import { ConfigError } from '@flotilla/common';
import type { StatusConfig } from '../status/status-config.js';
import { Notifier } from './notifier.js';
import type { WebhookTarget } from './notifier.js';

/** The notifier for config.status.notify, or undefined when no webhook is configured. */
export function notifierFromConfig(
  cfg: StatusConfig['notify'],
  env: NodeJS.ProcessEnv,
  logger: Logger,
  onOutcome?: (webhook: string, outcome: string) => void,
): Notifier | undefined {
  if (cfg.webhooks.length === 0) return undefined;
  const webhooks: WebhookTarget[] = cfg.webhooks.map((w, i) => {
    const url = w.url ?? env[w.urlEnv as string];
    if (!url)
      throw new ConfigError(
        `notify.webhooks[${i}].urlEnv`,
        `environment variable ${w.urlEnv} is not set`,
      );
    return { name: w.name, url, format: w.format, events: w.events };
  });
  return new Notifier({
    webhooks,
    logger,
    dedupeWindowMs: cfg.dedupeWindowMs,
    ...(onOutcome ? { onOutcome } : {}),
  });
}
