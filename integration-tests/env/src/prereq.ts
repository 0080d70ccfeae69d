// A test whose prerequisite is missing is skipped on a developer machine (with the fix
// in the skip reason) but fails in CI: a CI run that silently skips proves nothing.
import { accessSync, constants } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { PrerequisiteMissingError } from './errors.js';
import { binaryPaths, PREREQS_HINT } from './versions.js';
import { chooseRuntime } from './runtime.js';

/** What a check returns: true/undefined when present; false or a detail string when absent. */
export type PrerequisiteCheck = () => boolean | string | void | Promise<boolean | string | void>;

/** Options of requirePrerequisite(). */
export interface RequireOptions {
  /** Environment to read CI from. Default process.env (read at call time). */
  env?: NodeJS.ProcessEnv;
}

/** True when CI is set to anything but "false"/"0"/"" (GitHub, GitLab, … set CI=true). */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI?.toLowerCase();
  return ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0';
}

/**
 * Runs `check`. Present: resolves undefined. Missing: under CI throws
 * PrerequisiteMissingError (naming `howToGet`); elsewhere resolves the skip reason, so a
 * test writes `const skip = await requirePrerequisite(...); if (skip) return t.skip(skip);`
 * or passes it as the `skip` option of test(). A check that throws counts as missing.
 */
export async function requirePrerequisite(
  name: string,
  check: PrerequisiteCheck,
  howToGet: string,
  options: RequireOptions = {},
): Promise<string | undefined> {
  let result: boolean | string | void;
  try {
    result = await check();
  } catch (err) {
    result = (err as Error).message;
  }
  if (result === true || result === undefined) return undefined;
  const error = new PrerequisiteMissingError(
    name,
    howToGet,
    typeof result === 'string' ? result : undefined,
  );
  if (isCI(options.env ?? process.env)) throw error;
  return error.message;
}

/** A piece of the test environment a test can require. */
export type EnvPart = 'cluster' | 'nats' | 'git' | 'toxiproxy';

function executable(path: string): string | true {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return `${path} not found or not executable`;
  }
}

function gitHttpBackend(): string | true {
  const execPath = spawnSync('git', ['--exec-path'], { encoding: 'utf8' });
  if (execPath.status !== 0) return 'git is not on PATH';
  return executable(`${execPath.stdout.trim()}/git-http-backend`);
}

interface PartCheck {
  name: string;
  check: PrerequisiteCheck;
  howToGet: string;
}

// What each part of the environment needs, by the same rules startCluster()/startNats()
// use to pick a source.
const PART_CHECKS: Record<EnvPart, (env: NodeJS.ProcessEnv) => PartCheck> = {
  git: () => ({
    name: 'git http-backend',
    check: gitHttpBackend,
    howToGet: 'install git (Debian/Ubuntu: apt-get install git)',
  }),
  cluster: (env) => ({
    name: 'kube-apiserver and etcd',
    check: async () =>
      Boolean(env.KUBECONFIG) ||
      (await chooseRuntime(env)) === 'containers' ||
      all(executable(binaryPaths(env).kubeApiserver), executable(binaryPaths(env).etcd)),
    howToGet: `${PREREQS_HINT}, set FLOTILLA_KUBE_APISERVER/FLOTILLA_ETCD, or set KUBECONFIG to an existing cluster`,
  }),
  toxiproxy: (env) => ({
    name: 'toxiproxy',
    check: () => executable(binaryPaths(env).toxiproxy),
    howToGet: `${PREREQS_HINT} or set FLOTILLA_TOXIPROXY`,
  }),
  nats: (env) => ({
    name: 'nats-server',
    check: async () =>
      (await chooseRuntime(env)) === 'containers' || executable(binaryPaths(env).natsServer),
    howToGet: `${PREREQS_HINT} or set FLOTILLA_NATS_SERVER`,
  }),
};

/**
 * requirePrerequisite() for each part a test uses: a cluster (KUBECONFIG, a container
 * runtime, or the cached kube-apiserver + etcd), NATS (a runtime or the cached
 * nats-server), git (git with git-http-backend). Resolves a skip reason or undefined.
 */
export async function requireEnv(
  parts: EnvPart[],
  options: RequireOptions = {},
): Promise<string | undefined> {
  const env = options.env ?? process.env;
  const reasons: string[] = [];
  for (const part of parts) {
    const { name, check, howToGet } = PART_CHECKS[part](env);
    const reason = await requirePrerequisite(name, check, howToGet, options);
    if (reason) reasons.push(reason);
  }
  return reasons.length ? reasons.join('; ') : undefined;
}

function all(...results: (string | true)[]): string | true {
  const missing = results.filter((r): r is string => r !== true);
  return missing.length ? missing.join(', ') : true;
}
