// Push webhooks across hub replicas. A webhook reaches one replica (whichever the load
// balancer picked); that replica checks its signature, fetches at once, and tells the
// others on the core NATS subject flotilla.hub.<hubId>.fetch, so every replica fetches at
// once instead of at its next poll.
//
//   webhook ──signature ok──► this replica fetches ──publish {source, id, from}──► NATS
//   NATS ──► every other replica: bounded, known source, not its own, not seen ──► fetch now
//
// The message carries only the source's name (no payload, no secret): a replica fetches
// what its own configuration says, so the worst a forged message can do is an early fetch.
// A replica away from NATS misses the message and fetches at its next poll, as before.
import { randomUUID } from 'node:crypto';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '@flotilla/common';
import { LogFields, ValidationError, errorMessage } from '@flotilla/common';

/** Largest accepted trigger message (512 bytes): a source name, an id and a replica name. */
export const MAX_TRIGGER_BYTES = 512;

/** Trigger ids remembered, so a message delivered twice fetches once (256). */
export const TRIGGER_IDS_KEPT = 256;

/** The subject the replicas of one hub tell each other to fetch on. */
export function fetchSubject(hubId: string): string {
  return `flotilla.hub.${hubId}.fetch`;
}

/** What a replica tells the others: fetch this source now. */
export interface FetchTrigger {
  /** The source's name, as configured (sources[].name). */
  source: string;
  /** Unique per webhook, to drop a message delivered twice. */
  id: string;
  /** The replica the webhook reached. */
  from: string;
}

/** The wire form of a trigger. */
export function encodeTrigger(t: FetchTrigger): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ source: t.source, id: t.id, from: t.from }));
}

/** Reads a trigger; a ValidationError names what is wrong (too large, not JSON, a field). */
export function decodeTrigger(data: Uint8Array): FetchTrigger {
  if (data.length > MAX_TRIGGER_BYTES)
    throw new ValidationError(
      `fetch trigger is ${data.length} bytes, over the limit of ${MAX_TRIGGER_BYTES}`,
    );
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder().decode(data));
  } catch {
    throw new ValidationError('fetch trigger is not JSON');
  }
  if (typeof value !== 'object' || value === null)
    throw new ValidationError('fetch trigger is not a JSON object');
  const v = value as Record<string, unknown>;
  for (const field of ['source', 'id', 'from'] as const) {
    const f = v[field];
    if (typeof f !== 'string' || f === '')
      throw new ValidationError(`fetch trigger: "${field}" must be a non-empty string`);
  }
  return { source: v.source as string, id: v.id as string, from: v.from as string };
}

/** What a received trigger did. */
export type TriggerOutcome = 'fetching' | 'own' | 'duplicate' | 'unknown-source' | 'malformed';

/** Options of ReplicaFetchTriggers. */
export interface ReplicaFetchTriggersOptions {
  connection: () => Promise<NatsConnection>;
  hubId: string;
  /** This replica's id: its own messages are not acted on twice. */
  replicaId: string;
  /** Fetch-now of a configured source with a webhook; undefined for any other name. */
  target: (source: string) => (() => void) | undefined;
  logger: Logger;
}

/** Tells the other replicas of a webhook, and fetches when they tell of one. */
export class ReplicaFetchTriggers {
  private readonly seen = new Set<string>();
  private sub: Subscription | undefined;
  private loop: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly opts: ReplicaFetchTriggersOptions) {}

  /** Subscribes (again after the connection is replaced) until stopped. */
  start(): void {
    this.loop ??= this.run();
  }

  /** Tells the other replicas to fetch `source` now; a failure only logs (they poll). */
  announce(source: string): void {
    const trigger: FetchTrigger = { source, id: randomUUID(), from: this.opts.replicaId };
    this.remember(trigger.id);
    void this.opts
      .connection()
      .then((nc) => nc.publish(fetchSubject(this.opts.hubId), encodeTrigger(trigger)))
      .catch((err: unknown) =>
        this.opts.logger.warn(
          { [LogFields.source]: source, err: errorMessage(err) },
          'telling other replicas to fetch failed: they fetch at their next poll',
        ),
      );
  }

  /** Acts on one received message (the subscription calls it). */
  receive(data: Uint8Array): TriggerOutcome {
    let t: FetchTrigger;
    try {
      t = decodeTrigger(data);
    } catch (err) {
      this.opts.logger.warn({ err: errorMessage(err) }, 'fetch trigger ignored');
      return 'malformed';
    }
    if (t.from === this.opts.replicaId) return 'own';
    if (this.seen.has(t.id)) return 'duplicate';
    const fetchNow = this.opts.target(t.source);
    if (!fetchNow) {
      // Names are not echoed beyond a bound: the message came from the bus, not a person.
      this.opts.logger.warn(
        { [LogFields.source]: t.source.slice(0, 64), from: t.from.slice(0, 64) },
        'fetch trigger for a source with no webhook here: ignored',
      );
      return 'unknown-source';
    }
    this.remember(t.id);
    fetchNow();
    this.opts.logger.info(
      { [LogFields.source]: t.source, from: t.from },
      'webhook on another replica: fetching now',
    );
    return 'fetching';
  }

  /** Unsubscribes. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.sub?.unsubscribe();
    await this.loop;
  }

  private remember(id: string): void {
    this.seen.add(id);
    // A Set iterates in insertion order: the oldest goes first.
    if (this.seen.size <= TRIGGER_IDS_KEPT) return;
    const oldest = this.seen.values().next();
    if (!oldest.done) this.seen.delete(oldest.value);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let nc: NatsConnection;
      try {
        nc = await this.opts.connection();
      } catch {
        return; // the link stopped
      }
      if (this.stopped) return;
      // Ends when unsubscribed or when the connection closes (a new one is then awaited).
      try {
        const sub = nc.subscribe(fetchSubject(this.opts.hubId));
        this.sub = sub;
        for await (const m of sub) this.receive(m.data);
      } catch (err) {
        // A subscription error (permissions, a closed connection): subscribe again.
        this.opts.logger.warn({ err: errorMessage(err) }, 'fetch trigger subscription ended');
      }
      if (this.stopped) return;
      await nc.closed();
    }
  }
}
