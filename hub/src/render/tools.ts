// Runs the real `kustomize`, `helm` and `sops` programs for Kustomize and Helm bundles
// and SOPS-encrypted files. Each run
// gets a fresh temp dir holding only the bundle's files (never the hub's clone), no
// network (an unreachable proxy), a timeout, an output limit, and kernel limits on its
// memory (RLIMIT_DATA) and CPU time (RLIMIT_CPU), set by /bin/sh's ulimit before it
// execs the program. Any failure is a ValidationError for that bundle: a missing
// program, a chart that loops or allocates without end never stops other bundles or
// crashes the hub.
import { execFile } from 'node:child_process';
import {
  chmod,
  chown,
  copyFile,
  lchown,
  mkdir,
  mkdtemp,
  readdir,
  realpath,
  rm,
  writeFile,
} from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ValidationError, durations } from '@flotilla/common';
import { printablePath, treePathProblem } from '../source/tree-paths.js';
import { NO_SANDBOX } from './sandbox.js';
import type { ToolSandbox } from './sandbox.js';

/** Which program. */
export type ToolName = 'kustomize' | 'helm' | 'sops';

/** Settings of the tool runner. */
export interface ToolOptions {
  /** The kustomize program (default "kustomize", looked up on PATH). */
  kustomizePath?: string;
  /** The helm program (default "helm", looked up on PATH). */
  helmPath?: string;
  /** The sops program (default "sops", looked up on PATH). */
  sopsPath?: string;
  /** Longest run (default durations.renderToolTimeout, 60 s). */
  timeoutMs?: number;
  /** Largest output of one run (default 64 MiB). */
  maxOutputBytes?: number;
  /**
   * Data segment limit of one run (RLIMIT_DATA: heap and other private writable memory,
   * mapped rather than resident; default DEFAULT_TOOL_MAX_MEMORY, 512 MiB). Go programs
   * need about 128 MiB of it to start.
   */
  maxMemoryBytes?: number;
  /** CPU time of one run, all threads together (default durations.renderToolCpuTime, 30 s). */
  maxCpuMs?: number;
  /** Where runs happen (resolveSandbox; default NO_SANDBOX). */
  sandbox?: ToolSandbox;
}

/** One run: the files to materialize (repo path → bytes) and the arguments. */
export interface ToolRequest {
  tool: ToolName;
  files: ReadonlyMap<string, Buffer>;
  /** Arguments, given the materialized repo root and a scratch dir outside it. */
  args(root: string, scratch: string): string[];
  /** Extra files written to the scratch dir (name → content), e.g. Helm values, a fetched chart. */
  scratchFiles?: Readonly<Record<string, string | Buffer>>;
  /** Repo file errors are reported against. */
  errorFile: string;
  /**
   * Names the program prints for repo paths, and those paths: a chart's name for its
   * directory ("mychart/templates/x.yaml" → "bundles/web/chart/templates/x.yaml").
   */
  renames?: readonly (readonly [from: string, to: string])[];
  /** Extra environment of the program. */
  env?: Readonly<Record<string, string>>;
  /**
   * Files of the hub the program needs (environment variable → host path, e.g.
   * SOPS_AGE_KEY_FILE): copied into the run's own temp dir, which only the run can
   * read, and the variable names the copy. The program never needs access to the hub's
   * files, and the hub never reads the secret into its memory.
   */
  secretFiles?: Readonly<Record<string, string>>;
  /**
   * The reason of a failed run (exit code, stderr), when the caller knows the program's
   * codes better than its stderr: sops' stderr is never shown (it could hold plaintext).
   * undefined: the generic message with the last lines of stderr.
   */
  explainExit?: (exitCode: number, stderr: string) => string | undefined;
}

/** What the renderer needs to run a tool: the manifests it prints. */
export interface ToolRunner {
  /** stdout of the run; throws ValidationError on any failure. */
  run(req: ToolRequest): Promise<string>;
}

/** Default of ToolOptions.maxOutputBytes: 64 MiB. */
export const DEFAULT_MAX_TOOL_OUTPUT = 64 * 1024 * 1024;

/** Default of ToolOptions.maxMemoryBytes: 512 MiB. */
export const DEFAULT_TOOL_MAX_MEMORY = 512 * 1024 * 1024;

// Sets the limits, then becomes the program ($0) with its arguments: no shell stays
// between the hub and the program, so signals and exit codes are the program's own.
const LIMITED_EXEC =
  'ulimit -d "$FLOTILLA_LIMIT_DATA_KB" && ulimit -t "$FLOTILLA_LIMIT_CPU_S" && exec "$0" "$@"';

// Advice about the program's own flags ("Use --debug flag to render out invalid YAML",
// which helm adds to every template error): the user cannot pass flags to the hub's runs,
// so the line only hides the reason.
const FLAG_HINT = /^\s*Use --[a-z-]+ flag to /;

/** Runs tools as child processes, at most as many at once as there are cores. */
export class ExecToolRunner implements ToolRunner {
  private readonly paths: Record<ToolName, string>;
  private readonly timeoutMs: number;
  private readonly maxOutputBytes: number;
  private readonly maxMemoryBytes: number;
  private readonly maxCpuMs: number;
  private readonly sandbox: ToolSandbox;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly limit = Math.max(1, availableParallelism());

  constructor(opts: ToolOptions = {}) {
    this.paths = {
      kustomize: opts.kustomizePath ?? 'kustomize',
      helm: opts.helmPath ?? 'helm',
      sops: opts.sopsPath ?? 'sops',
    };
    this.timeoutMs = opts.timeoutMs ?? durations.renderToolTimeout;
    this.maxOutputBytes = opts.maxOutputBytes ?? DEFAULT_MAX_TOOL_OUTPUT;
    this.maxMemoryBytes = opts.maxMemoryBytes ?? DEFAULT_TOOL_MAX_MEMORY;
    this.maxCpuMs = opts.maxCpuMs ?? durations.renderToolCpuTime;
    this.sandbox = opts.sandbox ?? NO_SANDBOX;
  }

  async run(req: ToolRequest): Promise<string> {
    if (this.running >= this.limit)
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    this.running++;
    try {
      return await this.runNow(req);
    } finally {
      this.running--;
      this.waiting.shift()?.();
    }
  }

  private async runNow(req: ToolRequest): Promise<string> {
    // A program that resolves symlinks prints the real path of a symlinked temp dir.
    const tmp = await realpath(await mkdtemp(join(tmpdir(), `flotilla-${req.tool}-`)));
    const root = join(tmp, 'repo');
    const scratch = join(tmp, 'scratch');
    try {
      // The repo root too: a fetched chart with no values files brings no repo file.
      await mkdir(scratch, { recursive: true });
      await mkdir(root, { recursive: true });
      for (const [path, data] of req.files) {
        const problem = treePathProblem(path);
        if (problem)
          throw new ValidationError(
            `unsafe input path "${printablePath(path)}" for ${req.tool}: ${problem} is not allowed`,
            { file: req.errorFile },
          );
        await mkdir(dirname(join(root, path)), { recursive: true });
        await writeFile(join(root, path), data);
      }
      for (const [name, text] of Object.entries(req.scratchFiles ?? {})) {
        if (treePathProblem(name) !== undefined || name.includes('/'))
          throw new Error(`bad scratch file name ${JSON.stringify(name)}`);
        await writeFile(join(scratch, name), text);
      }
      const env: Record<string, string> = { ...req.env };
      for (const [variable, from] of Object.entries(req.secretFiles ?? {})) {
        const copy = join(tmp, `secret-${variable}`);
        await copyFile(from, copy);
        await chmod(copy, 0o400);
        env[variable] = copy;
      }
      const { uid, gid } = this.sandbox;
      if (uid !== undefined && gid !== undefined) await giveTree(tmp, uid, gid);
      return await this.exec(req, req.args(root, scratch), tmp, root, env);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  private exec(
    req: ToolRequest,
    args: string[],
    tmp: string,
    root: string,
    extraEnv: Record<string, string>,
  ): Promise<string> {
    const program = this.paths[req.tool];
    const { wrapper, uid, gid, wrapperSwitches } = this.sandbox;
    const env = {
      ...sandboxEnv(tmp),
      ...extraEnv,
      FLOTILLA_LIMIT_DATA_KB: String(Math.ceil(this.maxMemoryBytes / 1024)),
      FLOTILLA_LIMIT_CPU_S: String(Math.max(1, Math.ceil(this.maxCpuMs / 1000))),
    };
    return new Promise((resolve, reject) => {
      execFile(
        wrapper[0] ?? '/bin/sh',
        [
          ...wrapper.slice(1),
          ...(wrapper.length > 0 ? ['/bin/sh'] : []),
          '-c',
          LIMITED_EXEC,
          program,
          ...args,
        ],
        {
          ...(uid !== undefined && gid !== undefined && !wrapperSwitches ? { uid, gid } : {}),
          cwd: root,
          env,
          timeout: this.timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: this.maxOutputBytes,
          encoding: 'utf8',
        },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          const e = err as NodeJS.ErrnoException & { killed?: boolean };
          reject(
            new ValidationError(this.explain(req, program, e, stderr, tmp, root), {
              file: req.errorFile,
              cause: err,
            }),
          );
        },
      );
    });
  }

  private explain(
    req: ToolRequest,
    program: string,
    err: NodeJS.ErrnoException & { killed?: boolean; signal?: NodeJS.Signals | null },
    stderr: string,
    tmp: string,
    root: string,
  ): string {
    const tool = req.tool;
    const setting = `render.${tool}Path`;
    // The shell reports a program it cannot exec with exit 127 (not found) or 126.
    const code: unknown = err.code;
    if (code === 'ENOENT' || code === 127)
      return `the ${tool} program "${program}" was not found (install it, or set ${setting} in the hub config)`;
    if (code === 'EACCES' || code === 126)
      return `the ${tool} program "${program}" is not executable (${setting})`;
    if (code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER')
      return `${tool} printed more than ${this.maxOutputBytes} bytes: output too large`;
    if (err.killed) return `${tool} did not finish within ${Math.round(this.timeoutMs / 1000)} s`;
    const cpuS = Math.max(1, Math.ceil(this.maxCpuMs / 1000));
    if (err.signal === 'SIGXCPU')
      return `${tool} was stopped after ${cpuS} s of CPU time (render.toolMaxCpuTime)`;
    // The kernel sends SIGKILL at the CPU time limit (Go programs ignore SIGXCPU); the
    // kernel's out-of-memory killer sends it too.
    if (err.signal === 'SIGKILL')
      return `${tool} was killed: it used its ${cpuS} s of CPU time (render.toolMaxCpuTime), or the host ran out of memory`;
    if (/out of memory|cannot allocate memory/i.test(stderr))
      return `${tool} ran out of memory: one run may use ${Math.round(this.maxMemoryBytes / 1024 / 1024)} MiB (render.toolMaxMemoryBytes)`;
    if (req.explainExit && typeof code === 'number') {
      const reason = req.explainExit(code, stderr);
      if (reason !== undefined) return reason;
    }
    // Temp paths mean nothing to the user: show repo paths instead.
    const text = stderr
      .split(`${root}/`)
      .join('')
      .split(root)
      .join('.')
      .split(tmp)
      .join('<tmp>')
      .trim();
    const renamed = (req.renames ?? []).reduce(
      (t, [from, to]) =>
        t.replace(new RegExp(`(^|[\\s'"(])${escapeRegExp(from)}/`, 'g'), `$1${to}/`),
      text,
    );
    const lines = renamed.split('\n').filter((l) => l.trim() !== '' && !FLAG_HINT.test(l));
    const shown = lines.slice(-8).join('\n  ');
    return `${tool} failed (exit ${String(err.code ?? 'signal')}): ${shown || 'no error output'}`;
  }
}

// Only what the programs need; an unreachable proxy keeps remote bases and chart
// repositories out (the fleet repo must be self-contained), and the homes point into
// the temp dir so no user plugin, repository list or cache leaks in.
function sandboxEnv(tmp: string): NodeJS.ProcessEnv {
  const noNet = 'http://127.0.0.1:9';
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: tmp,
    XDG_CONFIG_HOME: join(tmp, 'config'),
    XDG_CACHE_HOME: join(tmp, 'cache'),
    XDG_DATA_HOME: join(tmp, 'data'),
    HELM_CONFIG_HOME: join(tmp, 'helm', 'config'),
    HELM_CACHE_HOME: join(tmp, 'helm', 'cache'),
    HELM_DATA_HOME: join(tmp, 'helm', 'data'),
    KUSTOMIZE_PLUGIN_HOME: join(tmp, 'kustomize-plugins'),
    HTTP_PROXY: noNet,
    HTTPS_PROXY: noNet,
    http_proxy: noNet,
    https_proxy: noNet,
    NO_PROXY: '',
    no_proxy: '',
    GIT_TERMINAL_PROMPT: '0',
    GIT_CONFIG_NOSYSTEM: '1',
  };
}

// The run's temp dir and everything in it to the sandbox user: it reads its inputs and
// writes its HOME there, and nothing else of the hub's is its own.
async function giveTree(tmp: string, uid: number, gid: number): Promise<void> {
  await chown(tmp, uid, gid);
  for (const rel of await readdir(tmp, { recursive: true })) await lchown(join(tmp, rel), uid, gid);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
