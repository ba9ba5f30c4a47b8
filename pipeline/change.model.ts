import type { ModelManifest } from './io/model.manifest.ts';

/** Model input samples: floats normalised as the manifest says, or 8-bit reflectance (manifest inputType). */
export type ModelInput = Float32Array | Uint8Array;

/**
 * A change detector: batches of co-registered before/after windows in, per-pixel change
 * probability out. Inputs are of the manifest's inputType: floats [batch, band, row, col], or 8-bit
 * samples pixel-interleaved [batch, row, col, band].
 */
export interface ChangeModel {
  readonly manifest: ModelManifest;
  /**
   * Change probability for a batch of windows, [batch, row, col]. The caller keeps the inputs and
   * owns the returned array: it may hand it to arrayPool when done, so a model must return an
   * array it does not keep or reuse.
   */
  run(before: ModelInput, after: ModelInput, batch: number, heightPx: number, widthPx: number): Promise<ModelRun>;
  close(): Promise<void>;
}

export interface ModelRun {
  probability: Float32Array;
  /** Building-interior probability [batch, row, col], when the manifest names an interior output; owned like probability. */
  interior?: Float32Array;
  /** Milliseconds the model computed, when it can tell them apart from waiting for its turn. */
  computeMs?: number;
}

/** ONNX feeds for one batch: pure data, so the call can be logged and tested without a runtime. */
export function buildFeeds(
  manifest: ModelManifest,
  before: ModelInput,
  after: ModelInput,
  batch: number,
  heightPx: number,
  widthPx: number,
) {
  const bands = manifest.bands.indices.length;
  const expected = batch * bands * heightPx * widthPx;
  const dims = manifest.inputType === 'uint8' ? [batch, heightPx, widthPx, bands] : [batch, bands, heightPx, widthPx];
  if (before.length !== expected || after.length !== expected) {
    throw new Error(
      `model ${manifest.name}: feed needs ${expected} values ([${dims.join(', ')}]), got ${before.length}/${after.length}`,
    );
  }
  const Want = manifest.inputType === 'uint8' ? Uint8Array : Float32Array;
  if (!(before instanceof Want) || !(after instanceof Want))
    throw new Error(`model ${manifest.name}: feed must be ${manifest.inputType}`);
  return { [manifest.inputs.before]: { data: before, dims }, [manifest.inputs.after]: { data: after, dims } };
}

export function sigmoidInPlace(a: Float32Array): Float32Array {
  for (let i = 0; i < a.length; i++) a[i] = 1 / (1 + Math.exp(-a[i]));
  return a;
}
