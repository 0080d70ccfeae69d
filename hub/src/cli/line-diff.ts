// A small unified line diff for `flotilla diff`: Kubernetes objects are short, so a
// plain LCS table is fast enough and keeps us free of a diff dependency.

/** Above this many lines × lines the diff is summarized instead of computed. */
const MAX_CELLS = 4_000_000;

type Op = { kind: ' ' | '-' | '+'; text: string; a: number; b: number };

function ops(a: readonly string[], b: readonly string[]): Op[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j] = LCS length of a[i..] and b[j..], in one flat array.
  const lcs = new Uint32Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * (m + 1) + j] =
        a[i] === b[j]
          ? (lcs[(i + 1) * (m + 1) + j + 1] as number) + 1
          : Math.max(lcs[(i + 1) * (m + 1) + j] as number, lcs[i * (m + 1) + j + 1] as number);
    }
  }
  const out: Op[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j])
      out.push({ kind: ' ', text: a[i++] as string, a: i, b: ++j });
    // On a tie, removals first: the conventional "-old +new" order.
    else if (
      i < n &&
      (j >= m || (lcs[(i + 1) * (m + 1) + j] as number) >= (lcs[i * (m + 1) + j + 1] as number))
    )
      out.push({ kind: '-', text: a[i++] as string, a: i, b: j });
    else out.push({ kind: '+', text: b[j++] as string, a: i, b: j });
  }
  return out;
}

/** Unified diff hunks ("@@ -a,n +b,m @@" and lines) of two line lists, with `context` lines around changes. */
export function unifiedDiff(a: readonly string[], b: readonly string[], context = 3): string[] {
  if (a.length * b.length > MAX_CELLS)
    return [`(object too large to diff: ${a.length} → ${b.length} lines)`];
  const all = ops(a, b);
  const changed = all.map((o, i) => (o.kind !== ' ' ? i : -1)).filter((i) => i >= 0);
  const out: string[] = [];
  let k = 0;
  while (k < changed.length) {
    const start = Math.max(0, (changed[k] as number) - context);
    let end = Math.min(all.length - 1, (changed[k] as number) + context);
    while (k + 1 < changed.length && (changed[k + 1] as number) - context <= end + 1) {
      k++;
      end = Math.min(all.length - 1, (changed[k] as number) + context);
    }
    k++;
    const hunk = all.slice(start, end + 1);
    const aLines = hunk.filter((o) => o.kind !== '+').length;
    const bLines = hunk.filter((o) => o.kind !== '-').length;
    const first = all[start] as Op;
    const aStart = first.kind === '+' ? first.a + 1 : first.a;
    const bStart = first.kind === '-' ? first.b + 1 : first.b;
    out.push(
      `@@ -${aLines === 0 ? aStart - 1 : aStart},${aLines} +${bLines === 0 ? bStart - 1 : bStart},${bLines} @@`,
    );
    for (const o of hunk) out.push(`${o.kind}${o.text}`);
  }
  return out;
}
