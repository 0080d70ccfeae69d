// Serialized cluster views, kept per record until the record changes, as UTF-8 bytes. A
// dashboard that polls the whole fleet asks for megabytes of JSON that are almost all
// unchanged since its last poll; serializing each view once per change (not once per
// request) takes the bulk of that work and garbage off every request (1,000 clusters × 20
// bundles: ~6 ms of JSON.stringify and 2.5 MB of strings per request before). Bytes, not
// text: a list answer is then copies of cached bytes, where joining 1,000 strings and
// encoding the result cost ~30× more per request, during a fan-out when every query waits.
import type { ClusterRecord } from './model.js';
import { degradedOf, stateOf, viewOf } from './model.js';

/** A piece of JSON as UTF-8: bytes[start, end), not to be changed. */
export interface JsonBytes {
  readonly bytes: Buffer;
  readonly start: number;
  readonly end: number;
}

/**
 * The UTF-8 bytes of text in a buffer of its own: a slice of Node's shared 8 KiB pool,
 * held by a cache, would keep the whole pool alive. ASCII text (JSON almost always is) is
 * copied as is, which costs a quarter of encoding it.
 */
export function ownBytes(text: string): Buffer {
  const size = Buffer.byteLength(text);
  const own = Buffer.allocUnsafeSlow(size);
  own.write(text, 0, size === text.length ? 'latin1' : 'utf8');
  return own;
}

/** JSON bytes of one whole buffer. */
export function jsonBytesOf(bytes: Buffer): JsonBytes {
  return { bytes, start: 0, end: bytes.length };
}

/** The text of JSON bytes. */
export function jsonText(json: JsonBytes): string {
  return json.bytes.toString('utf8', json.start, json.end);
}

/** JSON of cluster views, cached per record. */
export class ClusterJsonCache {
  // Keyed by the record object: a restored or replaced record is a new object, a new entry.
  private readonly cache = new WeakMap<ClusterRecord, { key: string; json: JsonBytes }>();

  /**
   * The JSON of viewOf(rec, nowMs, offlineAfterMs). `stamp` must change whenever the
   * record changes (FleetStatus counts its touches); the view's time-dependent parts
   * (state and message, which turn Offline with time, last seen, which heartbeats move
   * without a touch, and whether it shows as degraded) are part of the key.
   */
  bytes(rec: ClusterRecord, stamp: number, nowMs: number, offlineAfterMs: number): JsonBytes {
    const { state, message } = stateOf(rec, nowMs, offlineAfterMs);
    // Degraded clears with time, without a touch.
    const key = `${stamp}|${rec.lastSeenMs}|${state}|${message}|${degradedOf(rec, nowMs) !== ''}`;
    const hit = this.cache.get(rec);
    if (hit?.key === key) return hit.json;
    const json = jsonBytesOf(ownBytes(JSON.stringify(viewOf(rec, nowMs, offlineAfterMs))));
    this.cache.set(rec, { key, json });
    return json;
  }
}
