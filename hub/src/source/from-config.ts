// Builds a GitSource from the hub config: credentials, trusted keys and webhook secret
// are read here, once, at start (files or environment variables; never logged).
import { LogFields } from '@flotilla/common';
import type { Logger } from '@flotilla/common';
import type { HubConfig } from '../config/hub-config.js';
import { resolveSourceAuth } from '../config/load.js';
import { GitSource } from './git-source.js';
import { CommitVerifier } from './verify.js';
import { readWebhookSecret } from './webhook.js';

/** The GitSource for `cfg.sources[index]`; throws ConfigError naming the field when a secret or key cannot be read. */
export async function createGitSource(
  cfg: HubConfig,
  index: number,
  logger: Logger,
  env: NodeJS.ProcessEnv = process.env,
): Promise<GitSource> {
  const s = cfg.sources[index];
  if (!s) throw new Error(`no source at index ${index}`);
  const field = `sources[${index}]`;
  const auth = await resolveSourceAuth(cfg, index, env);
  const verifier = s.verify
    ? await CommitVerifier.fromConfig(
        s.verify,
        `${field}.verify`,
        logger.child({ [LogFields.component]: 'source', [LogFields.source]: s.name }),
      )
    : undefined;
  const webhookSecret = s.webhook
    ? await readWebhookSecret(s.webhook, `${field}.webhook`, env)
    : undefined;
  return new GitSource({
    name: s.name,
    url: s.url,
    ref: s.ref,
    ...(s.path !== '' ? { path: s.path } : {}),
    pollIntervalMs: s.pollIntervalMs,
    jitter: s.pollJitter,
    cacheDir: cfg.cacheDir,
    ...(auth ? { auth } : {}),
    ...(verifier ? { verifier } : {}),
    ...(webhookSecret ? { webhookSecret } : {}),
    logger,
  });
}
