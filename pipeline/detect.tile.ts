import type { ChangeModel } from './change.model.ts';
import { BadInputError } from './errors.ts';
import { readBaselineOnGrid, type BaselineTile } from './pair.align.ts';
import { normaliseBands, type BandStretch } from './raster.normalise.ts';
import type { TileSource } from './raster.source.ts';
import { blendWeights, windowGrid, type WindowPx } from './window.grid.ts';

export interface DetectInput {
  after: TileSource;
  afterStretch?: BandStretch | null;
  baselines: BaselineTile[];
  model: ChangeModel;
  /** Windows per inference call. */
  batchSize?: number;
  /** Called after each batch of windows with (windows done, windows total). */
  onProgress?: (done: number, total: number) => void;
}

export interface ChangeProbability {
  widthPx: number;
  heightPx: number;
  /** Per-pixel change probability 0..1, row-major; 0 where either date has no data. */
  probability: Float32Array;
  /** 1 where both dates had data. */
  valid: Uint8Array;
  windows: number;
}

/**
 * Change probability for one tile on the after image's grid: the tile is cut into overlapping
 * windows of the model's size, each window is run on the model, and overlapping predictions are
 * blended with weights that ramp down towards interior window edges, so no seam shows where
 * windows meet.
 */
export async function detectTile(input: DetectInput): Promise<ChangeProbability> {
  const { after, model } = input;
  const info = after.info;
  const m = model.manifest;
  const bandIdx = m.bands.indices;
  const maxBand = Math.max(...bandIdx);
  if (maxBand >= info.bandCount) {
    throw new BadInputError('band_count', `${info.file}: model ${m.name} reads band ${maxBand + 1} but the file has ${info.bandCount} band(s)`, { file: info.file, bands: info.bandCount });
  }
  const W = info.widthPx, H = info.heightPx;
  const windows = windowGrid(W, H, m.tileSizePx, m.overlapPx);
  const sum = new Float32Array(W * H);
  const weight = new Float32Array(W * H);
  const valid = new Uint8Array(W * H);
  const batchSize = Math.max(1, input.batchSize ?? 4);
  let done = 0;
  for (let i = 0; i < windows.length; i += batchSize) {
    const group = windows.slice(i, i + batchSize);
    const win0 = group[0];
    const plane = win0.width * win0.height;
    const nb = bandIdx.length;
    const before = new Float32Array(group.length * nb * plane);
    const afterT = new Float32Array(group.length * nb * plane);
    const masks: Uint8Array[] = [];
    for (const [gi, win] of group.entries()) {
      const a = normaliseBands(info, await after.readWindow(win, bandIdx), input.afterStretch);
      const b = await readBaselineOnGrid(info, win, input.baselines, bandIdx);
      const mask = new Uint8Array(plane);
      for (let p = 0; p < plane; p++) mask[p] = a.valid[p] & b.valid[p];
      masks.push(mask);
      for (let c = 0; c < nb; c++) {
        const mean = m.normalisation.mean[c];
        const inv = 1 / m.normalisation.std[c];
        const off = (gi * nb + c) * plane;
        const av = a.bands[c], bv = b.bands[c];
        for (let p = 0; p < plane; p++) {
          afterT[off + p] = (av[p] - mean) * inv;
          before[off + p] = (bv[p] - mean) * inv;
        }
      }
    }
    const prob = await model.run(before, afterT, group.length, win0.height, win0.width);
    for (const [gi, win] of group.entries()) stitch(prob.subarray(gi * plane, (gi + 1) * plane), masks[gi], win, W, H, m.overlapPx, sum, weight, valid);
    done += group.length;
    input.onProgress?.(done, windows.length);
  }
  const probability = new Float32Array(W * H);
  for (let p = 0; p < W * H; p++) probability[p] = valid[p] && weight[p] > 0 ? sum[p] / weight[p] : 0;
  return { widthPx: W, heightPx: H, probability, valid, windows: windows.length };
}

function stitch(prob: Float32Array, mask: Uint8Array, win: WindowPx, W: number, H: number, rampPx: number, sum: Float32Array, weight: Float32Array, valid: Uint8Array): void {
  const w = blendWeights(win, W, H, rampPx);
  for (let r = 0; r < win.height; r++) {
    const row = (win.y + r) * W + win.x;
    for (let c = 0; c < win.width; c++) {
      const p = r * win.width + c;
      if (!mask[p]) continue;
      sum[row + c] += prob[p] * w[p];
      weight[row + c] += w[p];
      valid[row + c] = 1;
    }
  }
}
