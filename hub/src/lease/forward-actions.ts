// Rollout actions across hub replicas. Only the lease holder decides rollouts; a person's
// action (approve, pause, abort, …) may reach any replica. The replica it reaches checks
// the caller's credentials and scope and records it in the audit log (the API does, once),
// then forwards it as a NATS request on flotilla.hub.<hubId>.rollout-action, which only the
// holder subscribes to while it holds the lease; the holder's answer (the rollout, or the
// typed error) is the caller's.
//
//   caller ──authorized, audited──► follower ──request {bundle, action, by, revision}──► NATS
//   NATS ──► holder: controller.act() ──reply {view} | {error}──► follower ──► caller
//
// No holder (between two holders), or no answer in time: UNAVAILABLE (retryable), saying
// which. The request carries the caller's name only as the controller records it
// (approvedBy); the hub's NATS account alone can publish there (agents may publish only
// their own event subjects), so the holder takes it as the receiving replica checked it.
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import { RequestError, TimeoutError } from '@nats-io/transport-node';
import type { ErrorCode, Logger } from '@flotilla/common';
import {
  FlotillaError,
  LogFields,
  ValidationError,
  durations,
  errorMessage,
} from '@flotilla/common';
import { ROLLOUT_ACTIONS } from '../rollout/machine.js';
import type { RolloutAction } from '../rollout/machine.js';
import type { RolloutView } from '../rollout/view.js';

/** Largest accepted forwarded action (4 KiB): a bundle name, an action, a name, a revision. */
export const MAX_ACTION_BYTES = 4096;

/** Room left under the server's max payload when replying with a rollout (8 KiB). */
const REPLY_MARGIN_BYTES = 8192;

const ERROR_CODES: readonly ErrorCode[] = [
  'CONFIG_INVALID',
  'VALIDATION_FAILED',
  'NOT_FOUND',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
  'UNAVAILABLE',
  'CONFLICT',
  'TOO_LARGE',
  'INTERNAL',
];

/** The subject the lease holder answers rollout actions on. */
export function actionSubject(hubId: string): string {
  return `flotilla.hub.${hubId}.rollout-action`;
}

/** A rollout action as forwarded to the holder. */
export interface ForwardedAction {
  bundle: string;
  action: RolloutAction;
  /** Who asked (already authorized on the receiving replica). */
  by: string;
  revision?: string | undefined;
  /** The replica that received it. */
  from: string;
}

/** The holder's answer: the rollout after the action, or the error it failed with. */
export type ActionReply =
  | { view: RolloutView; clustersOmitted?: boolean }
  | { error: { code: ErrorCode; message: string; retryable: boolean } };

const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

function parseObject(data: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw new ValidationError(`${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new ValidationError(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

/** The wire form of a forwarded action. */
export function encodeAction(a: ForwardedAction): Uint8Array {
  return encode(a);
}

/** Reads a forwarded action; a ValidationError names what is wrong. */
export function decodeAction(data: Uint8Array): ForwardedAction {
  if (data.length > MAX_ACTION_BYTES)
    throw new ValidationError(
      `forwarded rollout action is ${data.length} bytes, over the limit of ${MAX_ACTION_BYTES}`,
    );
  const v = parseObject(data, 'forwarded rollout action');
  for (const field of ['bundle', 'action', 'by', 'from'] as const)
    if (typeof v[field] !== 'string' || v[field] === '')
      throw new ValidationError(`forwarded rollout action: "${field}" must be a non-empty string`);
  if (!ROLLOUT_ACTIONS.includes(v.action as RolloutAction))
    throw new ValidationError(
      `forwarded rollout action: unknown action "${String(v.action).slice(0, 32)}"`,
    );
  if (v.revision !== undefined && typeof v.revision !== 'string')
    throw new ValidationError('forwarded rollout action: "revision" must be a string');
  return {
    bundle: v.bundle as string,
    action: v.action as RolloutAction,
    by: v.by as string,
    from: v.from as string,
    ...(typeof v.revision === 'string' && v.revision !== '' ? { revision: v.revision } : {}),
  };
}

/** The wire form of the holder's answer; a rollout larger than `maxBytes` goes without its clusters. */
export function encodeReply(reply: ActionReply, maxBytes = Infinity): Uint8Array {
  const data = encode(reply);
  if (data.length <= maxBytes || !('view' in reply)) return data;
  return encode({ view: { ...reply.view, clusters: [] }, clustersOmitted: true });
}

/** Reads the holder's answer: the rollout, or throws the holder's error as a FlotillaError. */
export function decodeReply(data: Uint8Array): { view: RolloutView; clustersOmitted: boolean } {
  const v = parseObject(data, "the lease holder's answer to a rollout action");
  if (typeof v.view === 'object' && v.view !== null)
    return { view: v.view as RolloutView, clustersOmitted: v.clustersOmitted === true };
  const e = v.error as Record<string, unknown> | undefined;
  if (typeof e !== 'object' || e === null || typeof e.message !== 'string')
    throw new FlotillaError(
      'INTERNAL',
      "the lease holder's answer to a rollout action has neither a rollout nor an error",
    );
  const code = ERROR_CODES.includes(e.code as ErrorCode) ? (e.code as ErrorCode) : 'INTERNAL';
  throw new FlotillaError(code, e.message, { retryable: e.retryable === true });
}

/** What the holder answers with (LeaderRollouts.actAsHolder). */
export type ActAsHolder = (
  bundle: string,
  action: RolloutAction,
  by: string,
  revision?: string,
) => Promise<RolloutView>;

/** Options of RolloutActionForwarding. */
export interface RolloutActionForwardingOptions {
  connection: () => Promise<NatsConnection>;
  hubId: string;
  replicaId: string;
  /** The lease: this replica answers only while it holds it. */
  lease: { readonly leading: boolean; onChange(l: (leading: boolean) => void): () => void };
  /** Runs an action on this replica's controller (refuses when it no longer holds the lease). */
  act: ActAsHolder;
  /** This replica's view of a rollout: fills in clusters a reply too large went without. */
  local?: (bundle: string) => RolloutView | undefined;
  logger: Logger;
  /** How long a forwarded action waits for the holder (default durations.rolloutActionForwardTimeout, 5 s). */
  timeoutMs?: number;
}

/** Forwards rollout actions to the lease holder, and answers them while holding it. */
export class RolloutActionForwarding {
  private sub: Subscription | undefined;
  private unsubscribe: (() => void) | undefined;
  private switching: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly opts: RolloutActionForwardingOptions) {}

  /** Answers actions whenever this replica holds the lease, from now until stopped. */
  start(): void {
    if (this.unsubscribe || this.stopped) return;
    this.unsubscribe = this.opts.lease.onChange((leading) => this.serve(leading));
    if (this.opts.lease.leading) this.serve(true);
  }

  /** Sends an action to the holder and returns its answer; UNAVAILABLE without one. */
  async forward(
    bundle: string,
    action: RolloutAction,
    by: string,
    revision?: string,
  ): Promise<RolloutView> {
    const timeout = this.opts.timeoutMs ?? durations.rolloutActionForwardTimeout;
    const nc = await this.opts.connection();
    let data: Uint8Array;
    try {
      const msg = await nc.request(
        actionSubject(this.opts.hubId),
        encodeAction({ bundle, action, by, revision, from: this.opts.replicaId }),
        { timeout },
      );
      data = msg.data;
    } catch (err) {
      if (err instanceof RequestError && err.isNoResponders())
        throw new FlotillaError(
          'UNAVAILABLE',
          `rollout ${action} of ${bundle}: no hub replica holds the once-only work lease right now (a new holder is being chosen); retry in a few seconds`,
          { retryable: true, cause: err },
        );
      if (err instanceof TimeoutError || (err as Error).cause instanceof TimeoutError)
        throw new FlotillaError(
          'UNAVAILABLE',
          `rollout ${action} of ${bundle}: the hub replica holding the lease did not answer within ${timeout} ms; retry`,
          { retryable: true, cause: err },
        );
      throw new FlotillaError(
        'UNAVAILABLE',
        `rollout ${action} of ${bundle}: forwarding to the hub replica holding the lease failed: ${errorMessage(err)}`,
        { retryable: true, cause: err },
      );
    }
    const { view, clustersOmitted } = decodeReply(data);
    if (!clustersOmitted) return view;
    return { ...view, clusters: this.opts.local?.(bundle)?.clusters ?? [] };
  }

  /** Stops answering. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.sub?.unsubscribe();
    this.sub = undefined;
    await this.switching;
  }

  // Subscribed only while holding the lease: a request then finds no responder at all
  // between two holders, and is told so at once instead of waiting for a timeout.
  private serve(leading: boolean): void {
    if (!leading) {
      this.sub?.unsubscribe();
      this.sub = undefined;
      return;
    }
    this.switching = this.switching.then(async () => {
      if (this.stopped || this.sub || !this.opts.lease.leading) return;
      let nc: NatsConnection;
      try {
        nc = await this.opts.connection();
      } catch {
        return; // the link stopped
      }
      if (this.stopped || this.sub || !this.opts.lease.leading) return;
      try {
        const sub = nc.subscribe(actionSubject(this.opts.hubId), {
          callback: (err, msg) => {
            if (err) return;
            // Not the holder any more (the lease was just lost): the next holder answers.
            if (!this.opts.lease.leading) return;
            void this.answer(msg.data)
              .then((reply) => {
                const max = nc.info ? nc.info.max_payload - REPLY_MARGIN_BYTES : Infinity;
                msg.respond(encodeReply(reply, max));
              })
              .catch((e: unknown) =>
                // The connection closed meanwhile: the caller times out and is told UNAVAILABLE.
                this.opts.logger.warn(
                  { err: errorMessage(e) },
                  'answering a rollout action failed',
                ),
              );
          },
        });
        this.sub = sub;
      } catch (err) {
        // A closed or draining connection: the next lease change subscribes again.
        this.opts.logger.warn(
          { err: errorMessage(err) },
          'cannot answer rollout actions from other replicas',
        );
      }
    });
  }

  private async answer(data: Uint8Array): Promise<ActionReply> {
    let a: ForwardedAction;
    try {
      a = decodeAction(data);
    } catch (err) {
      return { error: errorBody(err) };
    }
    try {
      const view = await this.opts.act(a.bundle, a.action, a.by, a.revision);
      this.opts.logger.info(
        { [LogFields.bundle]: a.bundle, action: a.action, from: a.from },
        'rollout action from another replica done',
      );
      return { view };
    } catch (err) {
      return { error: errorBody(err) };
    }
  }
}

function errorBody(err: unknown): { code: ErrorCode; message: string; retryable: boolean } {
  if (err instanceof FlotillaError)
    return { code: err.code, message: err.message, retryable: err.retryable };
  return { code: 'INTERNAL', message: errorMessage(err), retryable: false };
}
