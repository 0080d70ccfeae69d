// The event buffer on disk: events NATS has not accepted yet survive a restart of the
// agent (a crash, an OOM kill, a SIGKILL) when they are kept in a file on a volume (an
// emptyDir in the agent's manifests). One append-only file of JSON lines:
//   {"v":1,"id":ID,"dropped":N,"reported":M}  header: the spool's id, drops counted and
//                                             reported to the hub before the last rewrite
//   {"s":SUBJECT,"e":EVENT}       an event waiting to be published
//   {"a":ID}                      that event was accepted by JetStream (or refused for good)
//   {"d":ID}                      that event was dropped (the buffer was full)
//   {"r":M}                       drops up to M were reported to the hub
// Reading it back gives the waiting events in order, with the same ids, so JetStream's
// de-duplication (msgID = event id) keeps an event published just before a kill from
// being stored twice. Writes are synchronous appends (in the kernel once write() returns:
// a killed process loses nothing; a lost node may lose the last writes), and the file is
// rewritten with only the waiting events when it grows past its bound or empties.
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { FlotillaEvent } from '@flotilla/common';

/** File name of the event buffer in its directory. */
export const EVENT_SPOOL_FILE = 'events.log';
/**
 * Bytes the file may grow to before it is rewritten with only the waiting events (32 MiB).
 * The waiting events themselves are bounded by the publisher (EVENT_BUFFER_MAX_BYTES,
 * 16 MiB), so the directory holds at most 32 + 16 MiB during a rewrite.
 */
export const EVENT_SPOOL_MAX_FILE_BYTES = 32 * 1024 * 1024;

/** An event waiting to be published, as the spool keeps it. */
export interface SpooledEvent {
  subject: string;
  event: FlotillaEvent;
  /** Bytes of its line in the file (what it costs the buffer). */
  bytes: number;
}

/** What a spool held when opened. */
export interface SpoolContents {
  /** Events still waiting, oldest first. */
  pending: SpooledEvent[];
  /** Events dropped so far (the buffer was full), across restarts. */
  dropped: number;
  /** Of those, how many the hub was told about (an events-dropped event). */
  reported: number;
  /** The spool's id, kept across restarts (names its drop reports). */
  id: string;
  /** Lines that could not be read (a write cut short by a kill), skipped. */
  unreadable: number;
}

type Line = {
  v?: number;
  id?: string;
  dropped?: number;
  reported?: number;
  s?: string;
  e?: FlotillaEvent;
  a?: string;
  d?: string;
  r?: number;
};

/** The event buffer's file; every method is synchronous so an event is on disk once published. */
export class EventSpool {
  private fd: number;
  private size = 0;
  private dropped: number;
  private reported: number;
  private readonly path: string;
  /** The spool's id, kept across restarts. */
  readonly id: string;

  private constructor(
    private readonly dir: string,
    contents: SpoolContents,
    private readonly maxFileBytes: number,
  ) {
    this.path = join(dir, EVENT_SPOOL_FILE);
    this.id = contents.id;
    this.dropped = contents.dropped;
    this.reported = contents.reported;
    this.fd = this.rewrite(contents.pending);
  }

  /** Opens (or creates) the spool in dir and reads back what it held. */
  static open(
    dir: string,
    maxFileBytes = EVENT_SPOOL_MAX_FILE_BYTES,
  ): { spool: EventSpool; contents: SpoolContents } {
    mkdirSync(dir, { recursive: true });
    const contents = readSpool(join(dir, EVENT_SPOOL_FILE));
    return { spool: new EventSpool(dir, contents, maxFileBytes), contents };
  }

  /** The line an event takes (its bytes count against the buffer's bound). */
  static line(subject: string, event: FlotillaEvent): string {
    return `${JSON.stringify({ s: subject, e: event })}\n`;
  }

  /** Appends a waiting event (its line from line()). */
  append(line: string): void {
    this.write(line);
  }

  /** Records that the event with id left the buffer for good: accepted by NATS, or refused as too big. */
  accepted(id: string): void {
    this.write(`${JSON.stringify({ a: id })}\n`);
  }

  /** Records that the event with id was dropped because the buffer was full. */
  droppedEvent(id: string): void {
    this.dropped++;
    this.write(`${JSON.stringify({ d: id })}\n`);
  }

  /** Records that drops up to `total` were reported to the hub. */
  reportedDrops(total: number): void {
    this.reported = total;
    this.write(`${JSON.stringify({ r: total })}\n`);
  }

  /** Rewrites the file with only `pending` when it has grown past its bound, or when nothing waits. */
  compactIfNeeded(pending: readonly SpooledEvent[]): void {
    if (this.size > this.maxFileBytes || (pending.length === 0 && this.size > 4_096)) {
      closeSync(this.fd);
      this.fd = this.rewrite(pending);
    }
  }

  private write(line: string): void {
    this.size += writeSync(this.fd, line);
  }

  /** Closes the file (what waits stays in it for the next start). */
  close(): void {
    closeSync(this.fd);
  }

  // A new file beside the old one, renamed over it: a kill mid-rewrite leaves one whole file.
  private rewrite(pending: readonly SpooledEvent[]): number {
    const tmp = join(this.dir, `${EVENT_SPOOL_FILE}.tmp`);
    const header = { v: 1, id: this.id, dropped: this.dropped, reported: this.reported };
    const text = [
      `${JSON.stringify(header)}\n`,
      ...pending.map((p) => EventSpool.line(p.subject, p.event)),
    ].join('');
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, this.path);
    this.size = Buffer.byteLength(text);
    return openSync(this.path, 'a');
  }
}

/** Reads a spool file: the events still waiting, oldest first, and the drop count. */
export function readSpool(path: string): SpoolContents {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      return { pending: [], dropped: 0, reported: 0, id: randomUUID(), unreadable: 0 };
    throw err;
  }
  const waiting = new Map<string, SpooledEvent>();
  let id: string = randomUUID();
  let dropped = 0;
  let reported = 0;
  let unreadable = 0;
  for (const raw of text.split('\n')) {
    if (raw === '') continue;
    let line: Line;
    try {
      line = JSON.parse(raw) as Line;
    } catch {
      unreadable++;
      continue;
    }
    if (line.v !== undefined) {
      if (typeof line.id === 'string') id = line.id;
      dropped = typeof line.dropped === 'number' ? line.dropped : 0;
      reported = typeof line.reported === 'number' ? line.reported : 0;
    } else if (typeof line.r === 'number') reported = line.r;
    else if (typeof line.a === 'string') waiting.delete(line.a);
    else if (typeof line.d === 'string') {
      if (waiting.delete(line.d)) dropped++;
    } else if (typeof line.s === 'string' && line.e && typeof line.e.id === 'string')
      waiting.set(line.e.id, { subject: line.s, event: line.e, bytes: Buffer.byteLength(raw) + 1 });
    else unreadable++;
  }
  return { pending: [...waiting.values()], dropped, reported, id, unreadable };
}
