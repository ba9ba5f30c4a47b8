import type { ModelManifest } from './model.manifest.ts';

/**
 * A change detector: batches of co-registered before/after windows in, per-pixel change
 * probability out. Inputs are normalised as the manifest says, laid out [batch, band, row, col].
 */
export interface ChangeModel {
  readonly manifest: ModelManifest;
  run(before: Float32Array, after: Float32Array, batch: number, heightPx: number, widthPx: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/** ONNX feeds for one batch: pure data, so the call can be logged and tested without a runtime. */
export function buildFeeds(manifest: ModelManifest, before: Float32Array, after: Float32Array, batch: number, heightPx: number, widthPx: number) {
  const bands = manifest.bands.indices.length;
  const expected = batch * bands * heightPx * widthPx;
  if (before.length !== expected || after.length !== expected) {
    throw new Error(`model ${manifest.name}: feed needs ${expected} values ([${batch}, ${bands}, ${heightPx}, ${widthPx}]), got ${before.length}/${after.length}`);
  }
  const dims = [batch, bands, heightPx, widthPx];
  return { [manifest.inputs.before]: { data: before, dims }, [manifest.inputs.after]: { data: after, dims } };
}

export function sigmoidInPlace(a: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = 1 / (1 + Math.exp(-a[i]));
  return a;
}
