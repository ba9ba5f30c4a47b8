import type { ChangeModel } from '../../pipeline/change.model.ts';
import type { ModelManifest } from '../../pipeline/io/model.manifest.ts';

/** A manifest for a test model: 3 float bands, unnormalised, windows of `tile` px overlapping by `overlap`. */
export const echoManifest = (tile: number, overlap: number): ModelManifest => ({
  name: 'echo',
  version: '0',
  description: '',
  file: 'none',
  inputs: { before: 'b', after: 'a' },
  output: { name: 'p', kind: 'probability' },
  bands: { indices: [0, 1, 2] },
  normalisation: { mean: [0, 0, 0], std: [1, 1, 1] },
  inputType: 'float32',
  tileSizePx: tile,
  overlapPx: overlap,
  defaultThreshold: 0.5,
  gsdM: 0.5,
  provenance: {},
});

/** Returns the after image's first band: stitching must reproduce it exactly, seams or not. */
export function echoModel(tile: number, overlap: number): ChangeModel {
  return {
    manifest: echoManifest(tile, overlap),
    async run(_b, a, batch, h, w) {
      const out = new Float32Array(batch * h * w);
      for (let i = 0; i < batch; i++) out.set(a.subarray(i * 3 * h * w, i * 3 * h * w + h * w), i * h * w);
      return { probability: out };
    },
    async close() {},
  };
}
