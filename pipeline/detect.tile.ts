import type { ChangeModel } from './change.model.ts';
import { BadInputError } from './errors.ts';
import { readBaselineOnGrid, type BaselineTile } from './pair.align.ts';
import { normaliseBands, type BandStretch } from './raster.normalise.ts';
import type { TileSource } from './raster.source.ts';
import { WindowView } from './raster.view.ts';
import { blendRamps, windowGrid, type WindowPx } from './window.grid.ts';

export interface DetectInput {
  after: TileSource;
  afterStretch?: BandStretch | null;
  baselines: BaselineTile[];
  model: ChangeModel;
  /** Windows per inference call. */
  batchSize?: number;
  /** Called after each batch of windows with (windows done, windows total). */
  onProgress?: (done: number, total: number) => void;
  /** When given, milliseconds spent reading (and normalising), in the model, and blending are added to read/infer/blend. */
  stages?: Record<string, number>;
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
 * windows meet. Both dates are held in memory as float planes (about 40 bytes a pixel): for a
 * scene of any size use detectRegion part by part.
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
  // Both dates are read and normalised once for the whole raster (overlapping windows would
  // decode and normalise the same pixels again); windows are cut from memory below.
  let t = performance.now();
  const whole = { x: 0, y: 0, width: W, height: H };
  const a = normaliseBands(info, await after.readWindow(whole, bandIdx), input.afterStretch);
  const b = await readBaselineOnGrid(info, whole, input.baselines, bandIdx);
  const both = new Uint8Array(W * H);
  for (let p = 0; p < W * H; p++) both[p] = a.valid[p] & b.valid[p];
  t = lap(input.stages, 'read', t);
  const windows = windowGrid(W, H, m.tileSizePx, m.overlapPx);
  const sum = new Float32Array(W * H);
  const weight = new Float32Array(W * H);
  const valid = new Uint8Array(W * H);
  const batchSize = Math.max(1, input.batchSize ?? 4);
  const nb = bandIdx.length;
  const mean = m.normalisation.mean, inv = m.normalisation.std.map((v) => 1 / v);
  let done = 0;
  for (let i = 0; i < windows.length; i += batchSize) {
    const group = windows.slice(i, i + batchSize);
    const win0 = group[0];
    const plane = win0.width * win0.height;
    const before = new Float32Array(group.length * nb * plane);
    const afterT = new Float32Array(group.length * nb * plane);
    const masks: Uint8Array[] = [];
    t = performance.now();
    for (const [gi, win] of group.entries()) {
      const mask = new Uint8Array(plane);
      for (let r = 0; r < win.height; r++) mask.set(both.subarray((win.y + r) * W + win.x, (win.y + r) * W + win.x + win.width), r * win.width);
      masks.push(mask);
      for (let c = 0; c < nb; c++) {
        const mu = mean[c], k = inv[c];
        const off = (gi * nb + c) * plane;
        const av = a.bands[c], bv = b.bands[c];
        for (let r = 0; r < win.height; r++) {
          const src = (win.y + r) * W + win.x, dst = off + r * win.width;
          for (let x = 0; x < win.width; x++) {
            afterT[dst + x] = (av[src + x] - mu) * k;
            before[dst + x] = (bv[src + x] - mu) * k;
          }
        }
      }
    }
    t = lap(input.stages, 'read', t);
    const prob = await model.run(before, afterT, group.length, win0.height, win0.width);
    t = lap(input.stages, 'infer', t);
    for (const [gi, win] of group.entries()) stitch(prob.subarray(gi * plane, (gi + 1) * plane), masks[gi], win, W, H, m.overlapPx, sum, weight, valid);
    lap(input.stages, 'blend', t);
    done += group.length;
    input.onProgress?.(done, windows.length);
  }
  t = performance.now();
  const probability = new Float32Array(W * H);
  for (let p = 0; p < W * H; p++) probability[p] = valid[p] && weight[p] > 0 ? sum[p] / weight[p] : 0;
  lap(input.stages, 'blend', t);
  return { widthPx: W, heightPx: H, probability, valid, windows: windows.length };
}

/**
 * Change probability for one part (window range) of a scene, in bounded memory: the part is grown
 * by `marginPx` on every side inside the scene, so windows at its edges still see context, run
 * through detectTile, and cropped back to the part.
 */
export async function detectRegion(input: DetectInput & { region: WindowPx; marginPx: number }): Promise<ChangeProbability> {
  const { region, marginPx } = input;
  const info = input.after.info;
  const x0 = Math.max(0, region.x - marginPx), y0 = Math.max(0, region.y - marginPx);
  const x1 = Math.min(info.widthPx, region.x + region.width + marginPx), y1 = Math.min(info.heightPx, region.y + region.height + marginPx);
  const view = new WindowView(input.after, { x: x0, y: y0, width: x1 - x0, height: y1 - y0 });
  const grown = await detectTile({ ...input, after: view });
  if (x0 === region.x && y0 === region.y && view.info.widthPx === region.width && view.info.heightPx === region.height) return grown;
  const t = performance.now();
  const probability = new Float32Array(region.width * region.height);
  const valid = new Uint8Array(region.width * region.height);
  for (let r = 0; r < region.height; r++) {
    const src = (region.y - y0 + r) * view.info.widthPx + (region.x - x0);
    probability.set(grown.probability.subarray(src, src + region.width), r * region.width);
    valid.set(grown.valid.subarray(src, src + region.width), r * region.width);
  }
  lap(input.stages, 'blend', t);
  return { widthPx: region.width, heightPx: region.height, probability, valid, windows: grown.windows };
}

/** Adds the time since t0 to stages[key] (when stages are being collected) and returns now. */
function lap(stages: Record<string, number> | undefined, key: string, t0: number): number {
  const now = performance.now();
  if (stages) stages[key] = Math.round(((stages[key] ?? 0) + now - t0) * 10) / 10;
  return now;
}

function stitch(prob: Float32Array, mask: Uint8Array, win: WindowPx, W: number, H: number, rampPx: number, sum: Float32Array, weight: Float32Array, valid: Uint8Array): void {
  const { wx, wy } = blendRamps(win, W, H, rampPx);
  for (let r = 0; r < win.height; r++) {
    const row = (win.y + r) * W + win.x;
    const ry = wy[r];
    const p0 = r * win.width;
    for (let c = 0; c < win.width; c++) {
      if (!mask[p0 + c]) continue;
      const w = wx[c] * ry;
      sum[row + c] += prob[p0 + c] * w;
      weight[row + c] += w;
      valid[row + c] = 1;
    }
  }
}
