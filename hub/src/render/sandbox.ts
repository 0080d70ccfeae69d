// Where kustomize, helm and sops run: the strongest isolation this host allows, found
// once at hub start by trying each mechanism for real.
//
//   user     another user (render.sandboxUser, default 65534) in a network namespace
//            of its own: no network at all, and none of the hub's files (CA key, NATS
//            seeds, Git credentials, config) readable unless they are world-readable.
//   network  the hub's user in a network namespace of its own (an unprivileged user
//            namespace, `unshare -rn`): no network; files as the hub can read them.
//   none     only the scrubbed environment and the unreachable proxy (Go programs do
//            not use a proxy for 127.0.0.1 or localhost, so local services stay reachable).
//
// Every level keeps the rest: a temp dir holding only the run's inputs, a scrubbed
// environment with HOME in the temp dir, rlimits on memory and CPU time, a timeout and an
// output limit (tools.ts).
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';
import { errorMessage } from '@flotilla/common';

/** What the hub config asks for (render.sandbox). */
export type SandboxMode = 'auto' | 'user' | 'network' | 'none';
/** What a run gets, strongest first. */
export type SandboxLevel = 'user' | 'network' | 'none';

/** Order of strength, for comparisons and the metric (2 = user, 1 = network, 0 = none). */
export const SANDBOX_STRENGTH: Readonly<Record<SandboxLevel, number>> = {
  user: 2,
  network: 1,
  none: 0,
};

/** The render.sandbox settings. */
export interface SandboxSetting {
  mode: SandboxMode;
  /** User and group the tools run as at level "user" (default 65534:65534, "nobody"). */
  uid: number;
  gid: number;
}

/** Default of render.sandboxUser: nobody. */
export const DEFAULT_SANDBOX_USER = { uid: 65534, gid: 65534 } as const;

/**
 * Reads a sandbox user written "UID" or "UID:GID" (render.sandboxUser, `flotilla renderer
 * --sandbox-user`): the ids, or what is wrong with it ("format", or "root" for 0 and ids
 * past 4294967294).
 */
export function parseSandboxUser(text: string): { uid: number; gid: number } | 'format' | 'root' {
  const m = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(text);
  if (!m) return 'format';
  const uid = Number(m[1]);
  const gid = Number(m[2] ?? m[1]);
  if (uid === 0 || gid === 0 || uid > 0xfffffffe || gid > 0xfffffffe) return 'root';
  return { uid, gid };
}

/**
 * How the runner starts a tool: a plain-data value, so it crosses to the render worker.
 * The command line is `wrapper… /bin/sh -c <limits> program args`.
 */
export interface ToolSandbox {
  level: SandboxLevel;
  /** Program and arguments put before /bin/sh (empty at level none). */
  wrapper: readonly string[];
  /** The user a run is, when not the hub's: its temp dir is given to this user. */
  uid?: number;
  gid?: number;
  /** The wrapper switches to uid/gid itself (setpriv): the child is started as the hub. */
  wrapperSwitches?: boolean;
  /** Why this level and not a stronger one; undefined at level user. */
  weaker?: string;
}

/** No sandbox beyond environment, temp dir and limits (the CLI's renderer, tests' default). */
export const NO_SANDBOX: ToolSandbox = {
  level: 'none',
  wrapper: [],
  weaker: 'not configured',
};

interface Candidate {
  level: SandboxLevel;
  wrapper: string[];
  uid?: number;
  gid?: number;
  wrapperSwitches?: boolean;
  what: string;
}

// A run must not see another network interface than lo (down), nor an address.
const PROBE = 'grep -qv -e "^ *lo:" -e "|" -e "^ *face" /proc/net/dev && exit 3; exit 0';

/**
 * The sandbox for the setting: the first candidate that works, from the strongest.
 * `auto` takes what it can get; `user` and `network` throw when they cannot be had
 * (a configuration asking for isolation must not start without it); `none` uses none.
 * `programs` are the kustomize, helm and sops programs, which the sandbox user must be
 * able to run (a program under /root cannot be run by "nobody").
 */
export function resolveSandbox(
  setting: SandboxSetting,
  programs: readonly string[] = [],
): ToolSandbox {
  if (setting.mode === 'none')
    return { level: 'none', wrapper: [], weaker: 'render.sandbox is "none"' };
  const unshare = onPath('unshare');
  const setpriv = onPath('setpriv');
  const failures: string[] = [];
  const candidates: Candidate[] = [];
  const isRoot = process.getuid?.() === 0;
  const { uid, gid } = setting;
  if (!unshare) failures.push('the "unshare" program (util-linux) is not on PATH');
  else {
    if (setting.mode !== 'network') {
      if (!isRoot) failures.push('user: the hub is not running as root, so it cannot switch users');
      else {
        // Switch user first, then an unprivileged user + network namespace: needs only
        // CAP_SETUID/CAP_SETGID (a container's root has them) and user namespaces.
        candidates.push({
          level: 'user',
          wrapper: [unshare, '--user', '--map-root-user', '--net', '--'],
          uid,
          gid,
          what: `uid ${uid} in user and network namespaces`,
        });
        // A network namespace made by root (CAP_SYS_ADMIN), then the user switch.
        if (setpriv)
          candidates.push({
            level: 'user',
            wrapper: [
              unshare,
              '--net',
              '--',
              setpriv,
              `--reuid=${uid}`,
              `--regid=${gid}`,
              '--clear-groups',
              '--no-new-privs',
              '--',
            ],
            uid,
            gid,
            wrapperSwitches: true,
            what: `uid ${uid} in a network namespace`,
          });
      }
    }
    if (setting.mode !== 'user') {
      candidates.push({
        level: 'network',
        wrapper: [unshare, '--user', '--map-root-user', '--net', '--'],
        what: 'a user and network namespace',
      });
      if (isRoot)
        candidates.push({
          level: 'network',
          wrapper: [unshare, '--net', '--'],
          what: 'a network namespace',
        });
    }
  }
  for (const c of candidates) {
    const problem = tryCandidate(c, programs);
    if (problem === undefined) {
      const out: ToolSandbox = {
        level: c.level,
        wrapper: c.wrapper,
        ...(c.uid !== undefined ? { uid: c.uid, gid: c.gid } : {}),
        ...(c.wrapperSwitches ? { wrapperSwitches: true } : {}),
      };
      if (c.level !== 'user') out.weaker = failures.join('; ') || 'not asked for';
      return out;
    }
    failures.push(`${c.level} (${c.what}): ${problem}`);
  }
  if (setting.mode !== 'auto')
    throw new Error(
      `render.sandbox is "${setting.mode}" but this host does not allow it: ${failures.join('; ')}`,
    );
  return { level: 'none', wrapper: [], weaker: failures.join('; ') };
}

function tryCandidate(c: Candidate, programs: readonly string[]): string | undefined {
  // The programs must be runnable by the sandbox's user, checked as that user.
  const checks = programs
    .map((p) => (isAbsolute(p) ? p : onPath(p)))
    .filter((p): p is string => p !== undefined)
    .map(
      (p) =>
        `[ -x ${shellQuote(p)} ] || { echo "cannot run ${p.replace(/["\\$`]/g, '')} as that user (install it where every user can run it, e.g. /usr/local/bin)" >&2; exit 4; }`,
    );
  const script = [...checks, PROBE].join('\n');
  try {
    execFileSync(c.wrapper[0] as string, [...c.wrapper.slice(1), '/bin/sh', '-c', script], {
      ...(c.uid !== undefined && !c.wrapperSwitches ? { uid: c.uid, gid: c.gid } : {}),
      cwd: '/',
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 10_000,
    });
    return undefined;
  } catch (err) {
    const e = err as { status?: number | null; stderr?: Buffer };
    const said = e.stderr?.toString('utf8').trim().split('\n').slice(-2).join(' ') ?? '';
    if (e.status === 3) return 'the namespace still has a network interface';
    return said || errorMessage(err);
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A program's path found on PATH (executable by the hub), or undefined. */
export function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

const resolved = new Map<string, ToolSandbox>();

/** resolveSandbox, once per setting and programs for the process (the probe starts processes). */
export function sandboxFor(setting: SandboxSetting, programs: readonly string[] = []): ToolSandbox {
  const key = JSON.stringify([setting, programs]);
  let s = resolved.get(key);
  if (!s) {
    s = resolveSandbox(setting, programs);
    resolved.set(key, s);
  }
  return s;
}
