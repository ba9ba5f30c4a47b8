import type { StageTimer } from '../core/log.ts';
import { arrayPool } from './array.pool.ts';
import type { ChangeModel, ModelInput } from './change.model.ts';
import { BadInputError } from '../core/errors.ts';
import { bothValid, fillWindow, padWindow, readBaselinePlanes, readInputPlanes } from './model.input.ts';
import type { BaselineTile } from './pair.align.ts';
import type { BandStretch } from './raster.normalise.ts';
import type { TileSource } from './raster.source.ts';
import { WindowView } from './raster.view.ts';
import {
  blendRamps,
  modelInputSize,
  windowGrid,
  type AxisWindows,
  type WindowPx,
  type WindowSpec,
} from './window.grid.ts';

export interface DetectInput {
  after: TileSource;
  afterStretch?: BandStretch | null;
  baselines: BaselineTile[];
  model: ChangeModel;
  /** Windows per inference call. */
  batchSize?: number;
  /** Called after each batch of windows with (windows done, windows total). */
  onProgress?: (done: number, total: number) => void;
  /** When given, milliseconds spent reading (and normalising), in the model, waiting for the model, and blending are added to read/infer/modelWait/blend. */
  stages?: StageTimer;
}

export interface ChangeProbability {
  widthPx: number;
  heightPx: number;
  /** Per-pixel change probability 0..1, row-major; 0 where either date has no data. */
  probability: Float32Array;
  /** Building-interior probability, the same way, when the model has that output (manifest `interior`). */
  interior?: Float32Array;
  /** 1 where both dates had data. */
  valid: Uint8Array;
  /** How many pixels are valid. */
  validPx: number;
  windows: number;
}

/**
 * Change probability for one tile on the after image's grid: the tile is cut into overlapping
 * windows (windowGrid: as few and as large as the model's maxWindowPx allows), each window is run
 * on the model, and overlapping predictions are blended with weights that ramp down towards
 * interior window edges, so no seam shows where windows meet. Both dates are held in memory as read
 * (8-bit RGB: about 11 bytes a pixel with the result): for a scene of any size use detectRegion
 * part by part.
 */
export async function detectTile(input: DetectInput): Promise<ChangeProbability> {
  const { widthPx, heightPx } = input.after.info;
  return detectCropped(input, { x: 0, y: 0, width: widthPx, height: heightPx });
}

/**
 * Change probability for one part (window range) of a scene, in bounded memory: the part is grown
 * by `marginPx` (default partMarginPx) on every side inside the scene, so windows at its edges
 * still see context, run like detectTile, and cropped back to the part grown by `haloPx` (default
 * 0), for work that needs a few pixels of the neighbours (the mask's opening). `window` says
 * which pixels of the scene the result covers.
 */
export async function detectRegion(
  input: DetectInput & { region: WindowPx; marginPx?: number; haloPx?: number },
): Promise<ChangeProbability & { window: WindowPx }> {
  const { region } = input;
  const info = input.after.info;
  const haloPx = input.haloPx ?? 0;
  const marginPx = Math.max(input.marginPx ?? partMarginPx(input.model.manifest), haloPx);
  const grown = grownRegion(region, info.widthPx, info.heightPx, marginPx);
  const kept = grownRegion(region, info.widthPx, info.heightPx, haloPx);
  const view = new WindowView(input.after, grown);
  const r = await detectCropped({ ...input, after: view }, { ...kept, x: kept.x - grown.x, y: kept.y - grown.y });
  return { ...r, window: kept };
}

/** Context a part is read with on every side (px): the model's window overlap, and at least 32. */
export function partMarginPx(spec: WindowSpec): number {
  return Math.max(spec.overlapPx, 32);
}

/** `region` grown by `marginPx` on every side, clipped to a widthPx × heightPx scene: what detectRegion reads and runs. */
export function grownRegion(region: WindowPx, widthPx: number, heightPx: number, marginPx: number): WindowPx {
  const x0 = Math.max(0, region.x - marginPx),
    y0 = Math.max(0, region.y - marginPx);
  const x1 = Math.min(widthPx, region.x + region.width + marginPx),
    y1 = Math.min(heightPx, region.y + region.height + marginPx);
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}

/** Pixels fed to the model per call, when the caller does not set a batch size: 4 windows of 512². */
const PIXELS_PER_CALL = 4 * 512 * 512;

/** The core of detectTile and detectRegion: windows over the whole of `input.after`, the result kept only for `crop`. */
async function detectCropped(input: DetectInput, crop: WindowPx): Promise<ChangeProbability> {
  const { after, model } = input;
  const info = after.info;
  const m = model.manifest;
  const bandIdx = m.bands.indices;
  const maxBand = Math.max(...bandIdx);
  if (maxBand >= info.bandCount) {
    throw new BadInputError(
      'band_count',
      `${info.file}: model ${m.name} reads band ${maxBand + 1} but the file has ${info.bandCount} band(s)`,
      { file: info.file, bands: info.bandCount },
    );
  }
  const { widthPx, heightPx } = info;
  // Both dates are read once for the whole raster (overlapping windows would decode the same
  // pixels again) and kept as read; windows are cut and normalised from memory below.
  const timer = input.stages;
  timer?.restart();
  const whole = { x: 0, y: 0, width: widthPx, height: heightPx };
  // Both months at once: a decoder waiting on one file (libtiff's lock in libvips, a disk read)
  // leaves the cores to the other. Both reads end before anything is thrown (the caller closes the
  // files next), and the current month's error comes first, so the reported reason does not
  // depend on which read failed sooner.
  const [ra, rb] = await Promise.allSettled([
    readInputPlanes(after, whole, bandIdx, input.afterStretch, m),
    readBaselinePlanes(info, whole, input.baselines, bandIdx, m),
  ]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
  const a = ra.value,
    b = rb.value;
  const both = bothValid(a, b);
  timer?.lap('read');
  const grid = windowGrid(widthPx, heightPx, m);
  const { xs, ys } = grid;
  // a window with no pixel valid on both dates is not run: its pixels all come out invalid, and
  // its neighbours' ramps only weigh pixels of its own (a scene's nodata collar, a mosaic's holes)
  const windows = both ? grid.windows.filter((w) => anyValidIn(both, widthPx, w)) : grid.windows;
  // the model is fed windows of inW × inH: the window, padded where its size is not one the model takes
  const inW = modelInputSize(xs.size, m),
    inH = modelInputSize(ys.size, m);
  const padded = inW !== xs.size || inH !== ys.size;
  const blender = new Blender(widthPx, heightPx, xs, ys, m.overlapPx, crop, m.interior ? 2 : 1, inW);
  const nb = bandIdx.length;
  const plane = inW * inH;
  // as many windows per call as fit, spread evenly over the calls (4 windows: 2 + 2, not 3 + 1): every
  // new batch shape costs onnxruntime a slow first run, 2-3 windows' worth on the bench's real scenes
  const most = Math.max(1, input.batchSize ?? Math.floor(PIXELS_PER_CALL / plane));
  const batchSize = Math.max(1, Math.ceil(windows.length / Math.ceil(windows.length / most)));
  // The model runs on a thread of its own (OnnxChangeModel), so with several parts in flight one
  // part's cutting and blending overlap another's inference; the input tensors come from arrayPool
  // and go back after each batch.
  // in shared memory, which the model's thread reads without a copy
  const take = (n: number): ModelInput =>
    m.inputType === 'uint8' ? arrayPool.take(Uint8Array, n, false, true) : arrayPool.take(Float32Array, n, false, true);
  // a padded window is filled here first, then copied into the model's input with its padding
  const scratch = padded ? take(nb * xs.size * ys.size) : null;
  try {
    for (let k = 0; k < windows.length; k += batchSize) {
      const group = windows.slice(k, k + batchSize);
      const before = take(group.length * nb * plane),
        afterT = take(group.length * nb * plane);
      try {
        for (const [gi, win] of group.entries()) {
          for (const [planes, into] of [
            [a, afterT],
            [b, before],
          ] as const) {
            if (!scratch) fillWindow(planes, win, m, into, gi);
            else {
              fillWindow(planes, win, m, scratch, 0);
              padWindow(scratch, xs.size, ys.size, inW, inH, m, into, gi);
            }
          }
        }
        timer?.lap('read');
        const { probability: prob, interior, computeMs } = await model.run(before, afterT, group.length, inH, inW);
        if (m.interior && !interior) throw new Error(`model ${m.name}: no interior output from the run`);
        const outs = m.interior ? [prob, interior!] : [prob];
        // Inference is the model's own compute; the rest of the call (the hand-over to the model's
        // thread, another part's run ahead in its queue) is waiting, so that with several parts in
        // flight inference is counted once.
        if (computeMs === undefined) timer?.lap('infer');
        else {
          timer?.add('infer', computeMs);
          timer?.lap('modelWait', computeMs);
        }
        for (const [gi, win] of group.entries())
          blender.add(
            outs.map((o) => o.subarray(gi * plane, (gi + 1) * plane)),
            win.i,
            win.j,
          );
        arrayPool.give(...outs);
        timer?.lap('blend');
      } finally {
        arrayPool.give(before, afterT);
      }
      input.onProgress?.(Math.min(k + batchSize, windows.length), windows.length);
    }
  } finally {
    arrayPool.give(scratch);
  }
  const r = blender.finish(both);
  timer?.lap('blend');
  arrayPool.give(a.interleaved?.data, b.interleaved?.data);
  return { ...r, windows: windows.length };
}

/** Whether any pixel of `win` is set in `valid`, a mask `widthPx` wide. */
function anyValidIn(valid: Uint8Array, widthPx: number, win: WindowPx): boolean {
  for (let r = win.y; r < win.y + win.height; r++) {
    const s = r * widthPx + win.x;
    if (valid.subarray(s, s + win.width).includes(1)) return true;
  }
  return false;
}

/** Hands a result's planes back to arrayPool, for the next part, once nothing reads them any more. */
export function releaseProbability(r: ChangeProbability): void {
  arrayPool.give(r.probability, r.interior, r.valid);
}

/**
 * Blends overlapping window predictions into the crop. Each window's weight ramps down towards its
 * interior edges (blendRamps); the ramps are separable and the windows form a full grid, so the
 * weights summed over windows at a pixel are Σx·Σy, and dividing each window's ramps by those sums
 * beforehand makes every window add its final share directly, with no weight plane. Where one
 * window alone covers a pixel its share is 1 and its prediction is copied.
 */
class Blender {
  private readonly nx: Float32Array[];
  private readonly ny: Float32Array[];
  /** Per x-window, the columns [lo, hi) (window coordinates) no other window covers. */
  private readonly alone: [number, number][];
  /** The blended planes: probability, then the interior when the model has it. */
  private readonly planes: Float32Array[];

  constructor(
    private readonly widthPx: number,
    heightPx: number,
    private readonly xs: AxisWindows,
    private readonly ys: AxisWindows,
    rampPx: number,
    private readonly crop: WindowPx,
    planes = 1,
    /** Values per row of a window's prediction: the model's input width (modelInputSize), at least xs.size. */
    private readonly stride = xs.size,
  ) {
    this.nx = normalisedRamps(
      xs,
      widthPx,
      (s) => blendRamps({ x: s, y: 0, width: xs.size, height: 1 }, widthPx, 1, rampPx).wx,
    );
    this.ny = normalisedRamps(
      ys,
      heightPx,
      (s) => blendRamps({ x: 0, y: s, width: 1, height: ys.size }, 1, heightPx, rampPx).wy,
    );
    this.alone = xs.starts.map((s, i) => [
      i > 0 ? xs.starts[i - 1] + xs.size - s : 0,
      i + 1 < xs.starts.length ? xs.starts[i + 1] - s : xs.size,
    ]);
    this.planes = Array.from({ length: planes }, () => arrayPool.take(Float32Array, crop.width * crop.height, true));
  }

  /** Adds the prediction of window (i, j), one array per plane: column i and row j of the window grid. */
  add(probs: Float32Array[], i: number, j: number): void {
    for (const [k, prob] of probs.entries()) this.addPlane(this.planes[k], prob, i, j);
  }

  private addPlane(out: Float32Array, prob: Float32Array, i: number, j: number): void {
    const { crop } = this;
    const sx = this.xs.size,
      stride = this.stride;
    const x0 = this.xs.starts[i],
      y0 = this.ys.starts[j];
    const nx = this.nx[i],
      ny = this.ny[j];
    const cA = Math.max(0, crop.x - x0),
      cB = Math.min(sx, crop.x + crop.width - x0);
    if (cB <= cA) return;
    const lo = Math.max(cA, this.alone[i][0]),
      hi = Math.min(cB, this.alone[i][1]);
    const rA = Math.max(0, crop.y - y0),
      rB = Math.min(this.ys.size, crop.y + crop.height - y0);
    for (let r = rA; r < rB; r++) {
      const fy = ny[r];
      const p0 = r * stride;
      const d = (y0 + r - crop.y) * crop.width + x0 - crop.x;
      if (fy === 1 && hi > lo) {
        out.set(prob.subarray(p0 + lo, p0 + hi), d + lo);
        for (let c = cA; c < lo; c++) out[d + c] += prob[p0 + c] * nx[c];
        for (let c = hi; c < cB; c++) out[d + c] += prob[p0 + c] * nx[c];
      } else {
        for (let c = cA; c < cB; c++) out[d + c] += prob[p0 + c] * nx[c] * fy;
      }
    }
  }

  /** The blended crop, 0 (and invalid) where either month has no data; `both` covers the whole raster. */
  finish(both: Uint8Array | null): Omit<ChangeProbability, 'windows'> {
    const { crop, widthPx } = this;
    const [probability, interior] = this.planes;
    const valid = arrayPool.take(Uint8Array, crop.width * crop.height, both !== null);
    let validPx = valid.length;
    if (!both) valid.fill(1);
    else {
      validPx = 0;
      for (let r = 0; r < crop.height; r++) {
        const s = (crop.y + r) * widthPx + crop.x,
          d = r * crop.width;
        for (let c = 0; c < crop.width; c++) {
          if (both[s + c]) {
            valid[d + c] = 1;
            validPx++;
          } else {
            probability[d + c] = 0;
            if (interior) interior[d + c] = 0;
          }
        }
      }
    }
    return {
      widthPx: crop.width,
      heightPx: crop.height,
      probability,
      ...(interior ? { interior } : {}),
      valid,
      validPx,
    };
  }
}

/** Each window's ramp along one axis divided by the sum of all windows' ramps at that position (1 exactly where it is alone). */
function normalisedRamps(axis: AxisWindows, length: number, ramp: (start: number) => Float32Array): Float32Array[] {
  const ramps = axis.starts.map((s) => ramp(s));
  const total = new Float64Array(length);
  for (const [k, s] of axis.starts.entries()) for (let i = 0; i < axis.size; i++) total[s + i] += ramps[k][i];
  return ramps.map((w, k) => w.map((v, i) => (v === total[axis.starts[k] + i] ? 1 : v / total[axis.starts[k] + i])));
}
