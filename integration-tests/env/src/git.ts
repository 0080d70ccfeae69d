// The git CLI for tests: a working clone a test writes files into and pushes, so the
// code under test sees commits arrive exactly as they would from a user.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CommandFailedError } from './errors.js';

/** Basic-auth credentials of a test Git server. */
export interface GitCredentials {
  username: string;
  password: string;
}

// The user's own git config (signing, hooks, URL rewrites, credential helpers) must not
// change what a test does; a refused password must fail instead of prompting.
const GIT_ENV: NodeJS.ProcessEnv = {
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_TERMINAL_PROMPT: '0',
  GIT_ASKPASS: '',
  GIT_AUTHOR_NAME: 'Flotilla Test',
  GIT_AUTHOR_EMAIL: 'test@flotilla.invalid',
  GIT_COMMITTER_NAME: 'Flotilla Test',
  GIT_COMMITTER_EMAIL: 'test@flotilla.invalid',
};

/** Runs `git args` in `cwd` with an isolated config; resolves stdout, throws CommandFailedError. */
export function runGit(args: string[], cwd?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'git',
      args,
      { cwd, env: { ...process.env, ...GIT_ENV }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === 'number' ? err.code : null;
          reject(
            new CommandFailedError(
              `git ${redact(args).join(' ')}`,
              code,
              redact([stderr])[0] ?? '',
            ),
          );
        } else {
          resolve(stdout);
        }
      },
    );
  });
}

// Credentials embedded in URLs must not end up in test output.
function redact(parts: string[]): string[] {
  return parts.map((p) => p.replace(/(\w+:\/\/)[^/@\s]+@/g, '$1***@'));
}

/** Returns `url` with `credentials` as its user-info (how the git CLI takes them). */
export function withCredentials(url: string, credentials: GitCredentials): string {
  const u = new URL(url);
  u.username = encodeURIComponent(credentials.username);
  u.password = encodeURIComponent(credentials.password);
  return u.toString();
}

/** Options of createWorkRepo(). */
export interface WorkRepoOptions {
  /** Credentials put into the remote URL. Default none. */
  auth?: GitCredentials;
  /** Branch to commit to and push. Default "main". */
  branch?: string;
}

/** A local working clone of a test repository. */
export class WorkRepo {
  /** @param dir the clone's directory; @param branch the branch pushes go to. */
  constructor(
    readonly dir: string,
    readonly branch: string,
  ) {}

  /** Writes files (paths relative to the repo root, parent dirs created). */
  async writeFiles(files: Record<string, string>): Promise<void> {
    for (const [path, content] of Object.entries(files)) {
      const full = join(this.dir, path);
      await mkdir(dirname(full), { recursive: true });
      await writeFile(full, content);
    }
  }

  /** Deletes files or directories (relative paths); missing ones are ignored. */
  async remove(paths: string[]): Promise<void> {
    for (const path of paths) await rm(join(this.dir, path), { recursive: true, force: true });
  }

  /** Commits every change (an empty commit if none) and pushes; resolves the commit SHA. */
  async commitAndPush(message: string): Promise<string> {
    await runGit(['add', '--all'], this.dir);
    await runGit(['commit', '--quiet', '--allow-empty', '-m', message], this.dir);
    await runGit(['push', '--quiet', 'origin', `HEAD:refs/heads/${this.branch}`], this.dir);
    return this.head();
  }

  /** SHA of the local HEAD commit. */
  async head(): Promise<string> {
    return (await runGit(['rev-parse', 'HEAD'], this.dir)).trim();
  }

  /** Deletes the working clone. */
  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Clones `remoteUrl` (empty repos included) into a temp dir, on branch `options.branch`. */
export async function createWorkRepo(
  remoteUrl: string,
  options: WorkRepoOptions = {},
): Promise<WorkRepo> {
  const branch = options.branch ?? 'main';
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-work-'));
  const url = options.auth ? withCredentials(remoteUrl, options.auth) : remoteUrl;
  try {
    await runGit(['clone', '--quiet', url, dir]);
    // An empty clone has an unborn HEAD; a non-empty one may default to another branch.
    const remoteHasBranch =
      (await runGit(['ls-remote', '--heads', 'origin', branch], dir)).trim() !== '';
    if (remoteHasBranch)
      await runGit(['checkout', '--quiet', '-B', branch, `origin/${branch}`], dir);
    else await runGit(['symbolic-ref', 'HEAD', `refs/heads/${branch}`], dir);
    await runGit(['config', 'user.name', GIT_ENV.GIT_AUTHOR_NAME ?? ''], dir);
    await runGit(['config', 'user.email', GIT_ENV.GIT_AUTHOR_EMAIL ?? ''], dir);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return new WorkRepo(dir, branch);
}
