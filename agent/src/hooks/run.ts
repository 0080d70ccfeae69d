// Runs a bundle's Helm hooks of one phase, one at a time in their order, without ever
// blocking: a hook Job or Pod is created and the step returns "waiting"; the agent looks
// at it again (hooks/waiter.ts) and the next reconcile carries on from the run recorded in
// the bundle's inventory. Delete policies as helm: before-hook-creation (the default)
// deletes the previous object first, hook-succeeded / hook-failed delete it after.
import { durations, errorMessage, objectKey } from '@flotilla/common';
import type { BundleWaiting, HookPhase, HookSpec, KubeObject } from '@flotilla/common';
import { prepareObject } from '../apply/apply.js';
import { refusal } from '../apply/scope.js';
import type { ManagedNamespaces } from '../apply/scope.js';
import type { HookRun } from '../inventory/inventory.js';
import type { KubeApi, ObjectRef } from '../kube/types.js';
import { describeRef, refOf } from '../kube/types.js';
import { hookOutcome, waitsForCompletion } from './outcome.js';

/** What the agent should watch to carry on: a hook finishing, or a previous one gone. */
export interface HookWake {
  ref: ObjectRef;
  until: 'finished' | 'gone';
  /** Carry on at this time anyway (the hook's timeout), ms since epoch. */
  deadlineMs: number;
}

/** Result of advancing a phase. */
export interface HookStep {
  /**
   * done: every hook of the phase finished; waiting: one runs or is being replaced;
   * failed: one failed (recorded in the run, not retried until the bundle changes);
   * error: one could not be started or cleaned up (not recorded: retried like a failed apply).
   */
  status: 'done' | 'waiting' | 'failed' | 'error';
  run: HookRun;
  waiting?: BundleWaiting;
  wake?: HookWake;
  /** For failed and error: "pre-install hook Job/ns/name: reason". */
  message?: string;
}

/** Options of advanceHooks. */
export interface HookOptions {
  bundle: string;
  /** Namespace for namespaced hooks without one (default "default"). */
  defaultNamespace?: string;
  /** Namespaced mode: hooks outside these namespaces are refused (default: cluster-wide). */
  namespaces?: ManagedNamespaces;
  /** A hook Job or Pod unfinished after this long fails (default durations.hookTimeout, 5 min). */
  timeoutMs?: number;
  now?: () => number;
  signal?: AbortSignal;
}

/** The phase a stage of a run executes: pre-install, post-upgrade, pre-delete, … (none for post-delete). */
export function phaseOf(mode: HookRun['mode'], stage: 'pre' | 'post'): HookPhase | undefined {
  if (mode === 'delete') return stage === 'pre' ? 'pre-delete' : undefined;
  return `${stage}-${mode}` as HookPhase;
}

/**
 * The run a bundle at `digest` continues: the recorded one when it is for this digest,
 * else a new one: install when the bundle has nothing applied on this cluster (no
 * inventory, or only the record of an install that never got to its objects), upgrade
 * when it has (docs/helm.md).
 */
export function runFor(
  previous: { hooks?: HookRun; digest: string } | undefined,
  digest: string,
  mode?: HookRun['mode'],
): HookRun {
  const rec = previous?.hooks;
  const want = mode ?? (previous && previous.digest !== '' ? 'upgrade' : 'install');
  if (rec && rec.digest === digest && (mode === undefined || rec.mode === mode)) return rec;
  return { digest, mode: want, done: [] };
}

/** Hooks that run at a phase, in order. */
export function hooksAt(hooks: readonly HookSpec[] | undefined, phase: HookPhase): HookSpec[] {
  return (hooks ?? []).filter((h) => h.phases.includes(phase));
}

/**
 * Advances the hooks of one phase as far as they go now. Never waits for a hook: a Job or
 * Pod just created (or still running) gives "waiting" with what to watch.
 */
export async function advanceHooks(
  kube: KubeApi,
  hooks: readonly HookSpec[],
  run: HookRun,
  phase: HookPhase,
  opts: HookOptions,
): Promise<HookStep> {
  const r: HookRun = { ...run, done: [...run.done] };
  if (r.failed) return { status: 'failed', run: r, message: r.failed };
  const now = opts.now ?? Date.now;
  const timeoutMs = opts.timeoutMs ?? durations.hookTimeout;
  for (const h of hooksAt(hooks, phase)) {
    let obj: KubeObject;
    try {
      const info = await kube.resource(h.object.apiVersion, h.object.kind, opts.signal);
      obj = prepareObject(h.object, info.namespaced, opts);
      const refused = refusal(obj.metadata, info.namespaced, opts.namespaces);
      if (refused) throw new Error(refused);
    } catch (err) {
      const what = `${phase} hook ${h.object.kind}/${h.object.metadata.name}`;
      return { status: 'error', run: r, message: `${what}: ${errorMessage(err)}` };
    }
    const ref = refOf(obj);
    const id = `${phase}|${objectKey(obj)}`;
    const what = `${phase} hook ${describeRef(ref)}`;
    if (r.done.includes(id)) continue;
    try {
      const step =
        r.running?.hook === id
          ? await checkRunning(kube, h, ref, r, { what, now: now(), timeoutMs, opts })
          : undefined;
      if (step?.status === 'next') {
        r.done.push(id);
        continue;
      }
      if (step) return { ...step, status: step.status as HookStep['status'], run: r };
      const started = await start(kube, h, obj, ref, { what, now: now(), timeoutMs, opts });
      if (started.status === 'next') {
        r.done.push(id);
        continue;
      }
      if (started.status === 'waiting' && started.wake?.until === 'finished')
        r.running = { hook: id, sinceMs: now() };
      return { ...started, status: started.status as HookStep['status'], run: r };
    } catch (err) {
      return { status: 'error', run: r, message: `${what}: ${errorMessage(err)}` };
    }
  }
  delete r.running;
  return { status: 'done', run: r };
}

/** One hook's step; next: it finished, go on with the following hook. */
type StepResult = Omit<HookStep, 'run' | 'status'> & { status: HookStep['status'] | 'next' };

interface StepContext {
  what: string;
  now: number;
  timeoutMs: number;
  opts: HookOptions;
}

function waiting(
  ctx: StepContext,
  ref: ObjectRef,
  until: HookWake['until'],
  reason: string,
  deadlineMs: number,
): StepResult {
  return {
    status: 'waiting',
    waiting: { for: ctx.what, reason },
    wake: { ref, until, deadlineMs },
  };
}

// A hook this run started: finished (apply its delete policy), failed, timed out, or still running.
async function checkRunning(
  kube: KubeApi,
  h: HookSpec,
  ref: ObjectRef,
  r: HookRun,
  ctx: StepContext,
): Promise<StepResult | undefined> {
  const since = r.running?.sinceMs ?? ctx.now;
  const live = await kube.get(ref, ctx.opts.signal);
  // Deleted by someone while it ran: start it again.
  if (!live || live.metadata.deletionTimestamp) {
    delete r.running;
    return undefined;
  }
  const out = hookOutcome(live);
  if (out.state === 'running') {
    const deadline = since + ctx.timeoutMs;
    if (ctx.now < deadline)
      return waiting(
        ctx,
        ref,
        'finished',
        `waiting for ${ctx.what} to complete (${out.message})`,
        deadline,
      );
    return fail(
      kube,
      h,
      ref,
      r,
      `${ctx.what} did not complete within ${ctx.timeoutMs / 1000} s`,
      ctx,
    );
  }
  if (out.state === 'failed')
    return fail(kube, h, ref, r, `${ctx.what} failed: ${out.message}`, ctx);
  if (h.deletePolicies.includes('hook-succeeded')) await kube.delete(ref, ctx.opts.signal);
  delete r.running;
  return { status: 'next' };
}

async function fail(
  kube: KubeApi,
  h: HookSpec,
  ref: ObjectRef,
  r: HookRun,
  message: string,
  ctx: StepContext,
): Promise<StepResult> {
  if (h.deletePolicies.includes('hook-failed')) await kube.delete(ref, ctx.opts.signal);
  delete r.running;
  r.failed = message;
  return { status: 'failed', message };
}

// Creates a hook: the previous object goes first (before-hook-creation), then a Job or Pod
// is waited for and anything else is done as soon as it is applied.
async function start(
  kube: KubeApi,
  h: HookSpec,
  obj: KubeObject,
  ref: ObjectRef,
  ctx: StepContext,
): Promise<StepResult> {
  if (h.deletePolicies.includes('before-hook-creation')) {
    const live = await kube.get(ref, ctx.opts.signal);
    if (live) {
      if (!live.metadata.deletionTimestamp) await kube.delete(ref, ctx.opts.signal);
      if (await kube.get(ref, ctx.opts.signal))
        return waiting(
          ctx,
          ref,
          'gone',
          `waiting for the previous ${describeRef(ref)} to be deleted before ${ctx.what} runs`,
          ctx.now + ctx.timeoutMs,
        );
    }
  }
  await kube.apply(obj, { force: true, signal: ctx.opts.signal });
  if (waitsForCompletion(obj))
    return waiting(
      ctx,
      ref,
      'finished',
      `waiting for ${ctx.what} to complete`,
      ctx.now + ctx.timeoutMs,
    );
  if (h.deletePolicies.includes('hook-succeeded')) await kube.delete(ref, ctx.opts.signal);
  return { status: 'next' };
}
