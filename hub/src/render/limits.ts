// Bounds on what one commit can make the hub render. Whoever can push to the fleet repo
// could otherwise hand it a million empty documents or a hundred thousand objects:
// every limit crossed is an error of the bundle (or of the bundle on one cluster) that
// names the file and the setting, and the other bundles render as usual.
import { ValidationError } from '@flotilla/common';
import { HeapGuard } from './heap-guard.js';

/** Limits on documents and objects; part of RenderOptions and the hub config's `render:`. */
export interface RenderLimits {
  /** YAML documents in one bundle's manifests, empty ones included (default 10,000). */
  maxBundleDocuments: number;
  /** Objects in one bundle (default 5,000). */
  maxBundleObjects: number;
  /** Objects in one cluster's desired state, all bundles together (default 20,000). */
  maxClusterObjects: number;
}

/** Defaults of RenderLimits: far above real bundles, far below what stalls agents. */
export const DEFAULT_RENDER_LIMITS: Readonly<RenderLimits> = {
  maxBundleDocuments: 10_000,
  maxBundleObjects: 5_000,
  maxClusterObjects: 20_000,
};

/**
 * Counts one bundle version's documents and objects while they are parsed, so parsing
 * stops at the first document over a limit instead of after the last one, or once the
 * heap is close to full (HeapGuard).
 */
export class BundleBudget {
  private documents = 0;
  private objects = 0;
  private readonly heap = new HeapGuard();

  constructor(
    private readonly limits: Pick<RenderLimits, 'maxBundleDocuments' | 'maxBundleObjects'>,
  ) {}

  /** Counts a document (empty or not); throws ValidationError at file:line past the limit or with the heap nearly full. */
  document(file: string, line: number): void {
    const max = this.limits.maxBundleDocuments;
    if (++this.documents > max)
      throw new ValidationError(
        `the bundle has more than ${max} YAML documents (render.maxBundleDocuments); reading stopped here`,
        { file, line },
      );
    this.heap.document(file, line);
  }

  /** Counts an object; throws ValidationError at file:line past the limit. */
  object(file: string, line: number): void {
    const max = this.limits.maxBundleObjects;
    if (++this.objects > max)
      throw new ValidationError(
        `the bundle has more than ${max} objects (render.maxBundleObjects); reading stopped here`,
        { file, line },
      );
  }
}
