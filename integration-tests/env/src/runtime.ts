// Chooses between containers (testcontainers) and local binaries. Without a container
// engine getContainerRuntimeClient() rejects within milliseconds, but loading
// testcontainers costs ~11 MiB of heap: when nothing points at an engine (no DOCKER_HOST,
// no testcontainers settings, no engine socket where testcontainers looks) it is not
// loaded at all. The answer is cached for the life of the test process.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Where servers run: containers through testcontainers, or cached local binaries. */
export type Runtime = 'containers' | 'binaries';

let probe: Promise<boolean> | undefined;

/** Whether anything points at a container engine, as testcontainers would look for one. */
export function mayHaveContainerEngine(env: NodeJS.ProcessEnv = process.env): boolean {
  if (
    env.DOCKER_HOST ||
    env.TESTCONTAINERS_HOST_OVERRIDE ||
    env.TESTCONTAINERS_DOCKER_SOCKET_OVERRIDE
  )
    return true;
  const home = homedir();
  const candidates = [
    '/var/run/docker.sock',
    join(home, '.testcontainers.properties'),
    join(home, '.docker', 'run', 'docker.sock'),
    join(home, '.docker', 'desktop', 'docker.sock'),
    join(home, '.docker', 'contexts'),
    ...(env.XDG_RUNTIME_DIR
      ? [
          join(env.XDG_RUNTIME_DIR, 'docker.sock'),
          join(env.XDG_RUNTIME_DIR, 'podman', 'podman.sock'),
        ]
      : []),
  ];
  return candidates.some((p) => existsSync(p));
}

/** Whether testcontainers can reach a container runtime (cached after the first call). */
export function hasContainerRuntime(): Promise<boolean> {
  if (!mayHaveContainerEngine()) return Promise.resolve(false);
  probe ??= import('testcontainers')
    .then(({ getContainerRuntimeClient }) => getContainerRuntimeClient())
    .then(
      () => true,
      () => false,
    );
  return probe;
}

/**
 * FLOTILLA_TEST_RUNTIME=binaries|containers forces a runtime (e.g. binaries on a laptop
 * that has Docker but should run fast); otherwise containers when a runtime answers.
 */
export async function chooseRuntime(env: NodeJS.ProcessEnv = process.env): Promise<Runtime> {
  const forced = env.FLOTILLA_TEST_RUNTIME;
  if (forced === 'binaries' || forced === 'containers') return forced;
  if (forced && forced !== 'auto') {
    throw new Error(`FLOTILLA_TEST_RUNTIME must be binaries, containers or auto, got "${forced}"`);
  }
  return (await hasContainerRuntime()) ? 'containers' : 'binaries';
}
