import type { ModelInput } from './change.model.ts';
import { sameCrs } from './crs.ts';
import type { ModelManifest } from './model.manifest.ts';
import { integerShift, pixelMap, readBaselineOnGrid, type BaselineTile } from './pair.align.ts';
import { modelInputLuts, normaliseBands, validMask, type BandStretch } from './raster.normalise.ts';
import type { BandArray, RasterInfo, TileSource } from './raster.source.ts';
import type { WindowPx } from './window.grid.ts';

/**
 * One month's pixels over a region, kept as compact as they were read. For a model with 8-bit
 * inputs they are bytes (8-bit samples as read; others stretched to 0..255). For a model with
 * float inputs, 8- and 16-bit samples stay raw with a table per band to the model's input value,
 * and anything else (float samples, a baseline resampled or mosaicked onto the current grid) is
 * held as reflectance 0..1.
 */
export interface InputPlanes {
  width: number;
  height: number;
  /** Model band order: bytes (`bytes`), raw samples (`luts` set), or reflectance 0..1 (0 where invalid). */
  bands: BandArray[];
  luts: Float32Array[] | null;
  bytes: boolean;
  /** 1 where the pixel has data; null when every pixel has. */
  valid: Uint8Array | null;
}

/** A window of one raster as input planes (no resampling: the raster is on the target grid). */
export async function readInputPlanes(source: TileSource, win: WindowPx, bandIdx: number[], stretch: BandStretch | null | undefined, manifest: ModelManifest): Promise<InputPlanes> {
  const raw = await source.readWindow(win, bandIdx);
  const { width, height } = win;
  if (manifest.inputType === 'uint8') {
    if (source.info.sampleType === 'uint8') return { width, height, bands: raw, luts: null, bytes: true, valid: validMask(source.info, raw) };
    const norm = normaliseBands(source.info, raw, stretch, bandIdx);
    return { width, height, bands: norm.bands.map(toBytes), luts: null, bytes: true, valid: norm.valid };
  }
  const luts = modelInputLuts(source.info, bandIdx, stretch, manifest.normalisation.mean, manifest.normalisation.std);
  if (luts) return { width, height, bands: raw, luts, bytes: false, valid: validMask(source.info, raw) };
  const norm = normaliseBands(source.info, raw, stretch, bandIdx);
  return { width, height, bands: norm.bands, luts: null, bytes: false, valid: norm.valid };
}

/** Reflectance 0..1 as 8-bit samples 0..255. */
function toBytes(band: Float32Array): Uint8Array {
  const out = new Uint8Array(band.length);
  for (let i = 0; i < band.length; i++) out[i] = Math.round(band[i] * 255);
  return out;
}

/**
 * The earlier month on the current window's grid. The usual case, one baseline on the same grid
 * covering the whole window, is read raw; anything else goes through readBaselineOnGrid (shifts,
 * resampling, mosaics, gaps, and the refusal of another CRS).
 */
export async function readBaselinePlanes(target: RasterInfo, win: WindowPx, baselines: BaselineTile[], bandIdx: number[], manifest: ModelManifest): Promise<InputPlanes> {
  if (baselines.length === 1 && sameCrs(baselines[0].source.info.crs, target.crs)) {
    const base = baselines[0];
    const shift = integerShift(pixelMap(target.geoTransform, base.source.info.geoTransform));
    const x = win.x + (shift?.dx ?? 0), y = win.y + (shift?.dy ?? 0);
    if (shift && x >= 0 && y >= 0 && x + win.width <= base.source.info.widthPx && y + win.height <= base.source.info.heightPx) {
      return readInputPlanes(base.source, { ...win, x, y }, bandIdx, base.stretch, manifest);
    }
  }
  const read = await readBaselineOnGrid(target, win, baselines, bandIdx);
  const bytes = manifest.inputType === 'uint8';
  return { width: win.width, height: win.height, bands: bytes ? read.bands.map(toBytes) : read.bands, luts: null, bytes, valid: read.valid };
}

/** 1 where both months have data, or null when both have it everywhere. */
export function bothValid(a: InputPlanes, b: InputPlanes): Uint8Array | null {
  if (!a.valid) return b.valid;
  if (!b.valid) return a.valid;
  const out = new Uint8Array(a.valid.length);
  for (let i = 0; i < out.length; i++) out[i] = a.valid[i] & b.valid[i];
  return out;
}

/**
 * Writes one band of a window of the planes into a model input tensor at `offset`, row by row
 * ([row, col] of the window), as the model takes it: bytes as they are, floats normalised as the
 * manifest says. Pixels without data get the value of reflectance 0, as normaliseBands gives them.
 */
export function fillWindow(planes: InputPlanes, band: number, win: WindowPx, mean: number, std: number, out: ModelInput, offset: number): void {
  const W = planes.width;
  const src = planes.bands[band];
  if (planes.bytes) {
    if (!(out instanceof Uint8Array)) throw new Error('fillWindow: 8-bit planes need an 8-bit tensor');
    fillBytes(src as Uint8Array, planes.valid, W, win, out, offset);
    return;
  }
  if (!(out instanceof Float32Array)) throw new Error('fillWindow: float planes need a float tensor');
  const lut = planes.luts?.[band];
  if (lut) {
    const valid = planes.valid;
    const empty = (0 - mean) / std;
    if (valid) fillLutMasked(src, lut, valid, empty, W, win, out, offset);
    else fillLut(src, lut, W, win, out, offset);
    return;
  }
  fillAffine(src as Float32Array, mean, 1 / std, W, win, out, offset);
}

function fillBytes(src: Uint8Array, valid: Uint8Array | null, W: number, win: WindowPx, out: Uint8Array, offset: number): void {
  for (let r = 0; r < win.height; r++) {
    const s = (win.y + r) * W + win.x, d = offset + r * win.width;
    if (!valid) {
      out.set(src.subarray(s, s + win.width), d);
      continue;
    }
    for (let x = 0; x < win.width; x++) out[d + x] = valid[s + x] ? src[s + x] : 0;
  }
}

function fillLut(src: BandArray, lut: Float32Array, W: number, win: WindowPx, out: Float32Array, offset: number): void {
  for (let r = 0; r < win.height; r++) {
    const s = (win.y + r) * W + win.x, d = offset + r * win.width;
    for (let x = 0; x < win.width; x++) out[d + x] = lut[src[s + x]];
  }
}

function fillLutMasked(src: BandArray, lut: Float32Array, valid: Uint8Array, empty: number, W: number, win: WindowPx, out: Float32Array, offset: number): void {
  for (let r = 0; r < win.height; r++) {
    const s = (win.y + r) * W + win.x, d = offset + r * win.width;
    for (let x = 0; x < win.width; x++) out[d + x] = valid[s + x] ? lut[src[s + x]] : empty;
  }
}

function fillAffine(src: Float32Array, mean: number, k: number, W: number, win: WindowPx, out: Float32Array, offset: number): void {
  for (let r = 0; r < win.height; r++) {
    const s = (win.y + r) * W + win.x, d = offset + r * win.width;
    for (let x = 0; x < win.width; x++) out[d + x] = (src[s + x] - mean) * k;
  }
}
