// Keeps what the agent publishes within the limits the hub keeps (EVENT_LIMITS), so the
// hub never has to cut a correct agent's events and the events stream never refuses
// one for its size. Texts come from Kubernetes (error messages, conditions) and may be
// long; names and lists are already bounded where events are made (drift, health, sync).
import { EVENT_LIMITS, clipText } from '@flotilla/common';

/** An event's data made to fit, and how many texts or list items were cut. */
export interface FittedData<T> {
  data: T;
  cut: number;
}

// Lists of texts a second pass shortens to a few items when an event is still too big.
const TEXT_LISTS = new Set(['failures', 'reasons', 'changes']);

function fit(
  value: unknown,
  maxChars: number,
  maxItems: number,
  key: string,
  cut: { n: number },
): unknown {
  if (typeof value === 'string') {
    if (value.length <= maxChars) return value;
    cut.n++;
    return clipText(value, maxChars);
  }
  if (Array.isArray(value)) {
    const items = TEXT_LISTS.has(key) && value.length > maxItems ? value.slice(0, maxItems) : value;
    if (items !== value) cut.n += value.length - items.length;
    let changed = items !== value;
    const out = items.map((v) => {
      const f = fit(v, maxChars, maxItems, '', cut);
      if (f !== v) changed = true;
      return f;
    });
    return changed ? out : value;
  }
  if (value && typeof value === 'object') {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const f = fit(v, maxChars, maxItems, k, cut);
      if (f !== v) changed = true;
      out[k] = f;
    }
    return changed ? out : value;
  }
  return value;
}

/** Bytes of data in an event, at most: EVENT_LIMITS.eventBytes less room for the envelope (2 KiB). */
export const EVENT_DATA_MAX_BYTES = EVENT_LIMITS.eventBytes - 2_048;

// Drift values (changes[].old/new) may be whole objects or lists (a replaced list of
// containers): the last pass shows them as a short JSON text instead.
function summarizeValues(value: unknown, key: string, cut: { n: number }): unknown {
  if ((key === 'old' || key === 'new') && value !== null && typeof value === 'object') {
    cut.n++;
    return clipText(JSON.stringify(value), 128);
  }
  if (Array.isArray(value)) return value.map((v) => summarizeValues(v, '', cut));
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, summarizeValues(v, k, cut)]),
    );
  return value;
}

/**
 * data with every text within EVENT_LIMITS.textChars; when its JSON is still over
 * EVENT_DATA_MAX_BYTES, texts are cut to 128 characters and lists of texts to 3 items,
 * and then drift values that are objects or lists become 128 characters of their JSON.
 * Returns undefined when even that does not fit (a desired state of hundreds of
 * bundles): such an event cannot be published.
 */
export function fitEventData<T>(data: T): FittedData<T> | undefined {
  const cut = { n: 0 };
  let fitted = fit(data, EVENT_LIMITS.textChars, EVENT_LIMITS.texts, '', cut) as T;
  if (Buffer.byteLength(JSON.stringify(fitted)) <= EVENT_DATA_MAX_BYTES)
    return { data: fitted, cut: cut.n };
  fitted = fit(fitted, 128, 3, '', cut) as T;
  if (Buffer.byteLength(JSON.stringify(fitted)) <= EVENT_DATA_MAX_BYTES)
    return { data: fitted, cut: cut.n };
  fitted = summarizeValues(fitted, '', cut) as T;
  if (Buffer.byteLength(JSON.stringify(fitted)) <= EVENT_DATA_MAX_BYTES)
    return { data: fitted, cut: cut.n };
  return undefined;
}
