// A cluster's status record is saved as one KV value, so it must fit in one NATS message.
// Bounded input (event-data.ts) keeps records far below that; this is the safety net for
// what still adds up (many bundles, each with many drifted objects of long names): a
// record over its budget is shrunk, dropping first what matters least, so it can be
// saved and never holds back the acks of the other clusters' events.
import { clipText } from '@flotilla/common';
import type { ClusterRecord } from './model.js';

/** Largest status record saved, bytes of JSON (256 KiB; a normal record is 5-20 KiB). */
export const STATUS_RECORD_MAX_BYTES = 256 * 1024;

/** Characters left of each text of a record that still does not fit (256). */
const SHRUNK_TEXT_CHARS = 256;

/** Bytes of a JSON text in UTF-8, exact only when it may exceed `budget` (cheap otherwise). */
export function jsonBytes(json: string, budget: number): number {
  // A UTF-16 unit is at most 3 UTF-8 bytes: short texts need no count.
  return json.length * 3 <= budget ? json.length : Buffer.byteLength(json, 'utf8');
}

function isListed(rec: ClusterRecord, bundle: string): boolean {
  return (
    (rec.desiredBundles ?? []).some((b) => b.name === bundle) ||
    rec.bundles.some((b) => b.name === bundle)
  );
}

// Each step drops more; the order is what a user misses least first.
const STEPS: { what: string; run(rec: ClusterRecord): void }[] = [
  {
    // Only there to order late drift events; the drifted counts stay.
    what: 'settled drift objects',
    run(rec) {
      for (const f of Object.values(rec.bundleFacts ?? {}))
        for (const [k, o] of Object.entries(f.objects ?? {})) if (!o.drifted) delete f.objects?.[k];
    },
  },
  {
    what: 'drifted object names',
    run(rec) {
      for (const f of Object.values(rec.bundleFacts ?? {})) delete f.objects;
    },
  },
  {
    // Facts of bundles the cluster neither should run nor runs show nowhere.
    what: 'facts of unknown bundles',
    run(rec) {
      for (const name of Object.keys(rec.bundleFacts ?? {}))
        if (!isListed(rec, name)) delete rec.bundleFacts?.[name];
    },
  },
  {
    what: 'long messages',
    run(rec) {
      for (const f of Object.values(rec.bundleFacts ?? {})) {
        f.lastError = clipText(f.lastError, SHRUNK_TEXT_CHARS);
        if (f.healthReason) f.healthReason = clipText(f.healthReason, SHRUNK_TEXT_CHARS);
      }
      if (rec.lastAttempt)
        rec.lastAttempt.message = clipText(rec.lastAttempt.message, SHRUNK_TEXT_CHARS);
      if (rec.lastDisconnectReason)
        rec.lastDisconnectReason = clipText(rec.lastDisconnectReason, SHRUNK_TEXT_CHARS);
    },
  },
];

/**
 * Shrinks rec in place, step by step, until fits(rec); returns what was dropped (empty
 * when it already fit). The record may still not fit after every step (a fleet repo
 * giving one cluster thousands of bundles): the caller checks again.
 */
export function shrinkRecord(rec: ClusterRecord, fits: (rec: ClusterRecord) => boolean): string[] {
  const dropped: string[] = [];
  for (const step of STEPS) {
    if (fits(rec)) break;
    step.run(rec);
    dropped.push(step.what);
  }
  return dropped;
}
