// The git CLI for tests: a working clone a test writes files into and pushes, so the
// code under test sees commits arrive exactly as they would from a user; or a local
// repository with no remote, for code that reads a checkout directly.
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

/** Files to change, paths relative to the repo root: text is written, null deletes. */
export type FileChanges = Record<string, string | null>;

/** Options of createWorkRepo(). */
export interface WorkRepoOptions {
  /** Credentials put into the remote URL. Default none. */
  auth?: GitCredentials;
  /** Branch to commit to and push. Default "main". */
  branch?: string;
}

/** A test repository's working tree: a clone (createWorkRepo) or a local repo (createLocalRepo). */
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

  /** Applies `files` (text writes, null deletes), commits every change (an empty commit
   * if none) without pushing; resolves the commit SHA. */
  async commit(message: string, files: FileChanges = {}): Promise<string> {
    for (const [path, content] of Object.entries(files)) {
      if (content === null) await this.remove([path]);
      else await this.writeFiles({ [path]: content });
    }
    await runGit(['add', '--all'], this.dir);
    await runGit(['commit', '--quiet', '--allow-empty', '-m', message], this.dir);
    return this.head();
  }

  /** Pushes the local HEAD to `branch` on the remote the clone came from. */
  async push(): Promise<void> {
    await runGit(['push', '--quiet', 'origin', `HEAD:refs/heads/${this.branch}`], this.dir);
  }

  /** commit(message, files), then push(); resolves the commit SHA. */
  async commitAndPush(message: string, files: FileChanges = {}): Promise<string> {
    const sha = await this.commit(message, files);
    await this.push();
    return sha;
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

// Commits made by hand in a test's repo (not through runGit) get the same identity.
async function setIdentity(dir: string): Promise<void> {
  await runGit(['config', 'user.name', GIT_ENV.GIT_AUTHOR_NAME ?? ''], dir);
  await runGit(['config', 'user.email', GIT_ENV.GIT_AUTHOR_EMAIL ?? ''], dir);
}

/** Options of createLocalRepo(). */
export interface LocalRepoOptions {
  /** Branch of the first commit. Default "main". */
  branch?: string;
}

/** Creates an empty repository with no remote in a temp dir (push() has nowhere to go):
 * commit() into it and hand `dir` to code that reads a local checkout. */
export async function createLocalRepo(options: LocalRepoOptions = {}): Promise<WorkRepo> {
  const branch = options.branch ?? 'main';
  const dir = await mkdtemp(join(tmpdir(), 'flotilla-local-'));
  try {
    await runGit(['init', '--quiet', `--initial-branch=${branch}`], dir);
    await setIdentity(dir);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return new WorkRepo(dir, branch);
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
    await setIdentity(dir);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return new WorkRepo(dir, branch);
}
