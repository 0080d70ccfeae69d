// Reading hub.yaml and the secrets it points to. Files are read at start only.
import { readFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseYamlObject } from '@flotilla/common';
import { compileHubConfig } from './hub-config.js';
import type { HubConfig } from './hub-config.js';
import { compileChartSettings, defaultChartCache } from '../render/charts/settings.js';
import type { ChartSettings } from '../render/charts/settings.js';

/** Default cache directory: ~/.cache/flotilla/hub, or a temp dir when there is no home. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const home = homedir();
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'flotilla', 'hub');
  return home ? join(home, '.cache', 'flotilla', 'hub') : join(tmpdir(), 'flotilla-hub');
}

/** Reads, parses and compiles a hub.yaml; errors name the file, line or field. */
export async function loadHubConfig(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<HubConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError('--config', `cannot read ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  // An empty file is a valid "all defaults" file, but sources are required anyway.
  const raw = text.trim() === '' ? {} : parseYamlObject(text, file);
  return compileHubConfig(raw, file, { defaultCacheDir: defaultCacheDir(env) });
}

/**
 * The `charts:` section of a hub.yaml, for the CLI (`flotilla render --hub-config`): the
 * same credentials and CA as the hub, the chart cache in the user's own cache dir unless
 * the file names one. Nothing else of the file is checked.
 */
export async function loadChartSettings(
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ChartSettings> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError('--hub-config', `cannot read ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const raw = text.trim() === '' ? {} : parseYamlObject(text, file);
  const settings = compileChartSettings(raw, file, defaultCacheDir(env));
  const own = (raw.charts as Record<string, unknown> | undefined)?.cacheDir;
  return own === undefined ? { ...settings, cacheDir: defaultChartCache(env) } : settings;
}

/** Reads the shared agent token named by auth.tokenFile; undefined when none is configured. */
export async function readAgentToken(cfg: HubConfig): Promise<string | undefined> {
  const path = cfg.auth.tokenFile;
  if (!path) return undefined;
  let token: string;
  try {
    token = (await readFile(path, 'utf8')).trim();
  } catch (err) {
    throw new ConfigError('auth.tokenFile', `cannot read ${path}: ${(err as Error).message}`, {
      file: cfg.file,
      cause: err,
    });
  }
  if (token === '') throw new ConfigError('auth.tokenFile', `${path} is empty`, { file: cfg.file });
  return token;
}

/** Reads a file named by a config field at start; the error names the field, never the content. */
export async function readConfigFile(path: string, field: string, file: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new ConfigError(field, `cannot read ${path}: ${(err as Error).message}`, {
      file,
      cause: err,
    });
  }
}

/** Git credentials resolved from a source's auth section. */
export type ResolvedGitAuth = { username: string; password: string } | { token: string };

async function secret(
  cfg: HubConfig,
  field: string,
  file: string | undefined,
  envName: string | undefined,
  env: NodeJS.ProcessEnv,
): Promise<string | undefined> {
  if (file) {
    try {
      return (await readFile(file, 'utf8')).trim();
    } catch (err) {
      throw new ConfigError(`${field}File`, `cannot read ${file}: ${(err as Error).message}`, {
        file: cfg.file,
        cause: err,
      });
    }
  }
  if (envName) {
    const value = env[envName];
    if (value === undefined || value === '')
      throw new ConfigError(`${field}Env`, `environment variable ${envName} is not set`, {
        file: cfg.file,
      });
    return value;
  }
  return undefined;
}

/** Reads the credentials of sources[index]; undefined when it has none. */
export async function resolveSourceAuth(
  cfg: HubConfig,
  index: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ResolvedGitAuth | undefined> {
  const auth = cfg.sources[index]?.auth;
  if (!auth) return undefined;
  const at = `sources[${index}].auth.`;
  const token = await secret(cfg, `${at}token`, auth.tokenFile, auth.tokenEnv, env);
  if (token !== undefined) return { token };
  const username = await secret(cfg, `${at}username`, auth.usernameFile, auth.usernameEnv, env);
  const password = await secret(cfg, `${at}password`, auth.passwordFile, auth.passwordEnv, env);
  if (username === undefined && password === undefined) return undefined;
  if (username === undefined || password === undefined) {
    throw new ConfigError(
      `${at}${username === undefined ? 'username' : 'password'}File`,
      'username and password go together',
      { file: cfg.file },
    );
  }
  return { username, password };
}
