import type { ModelInput } from './change.model.ts';
import { sameCrs } from '../core/crs.ts';
import type { ModelManifest } from './io/model.manifest.ts';
import { integerShift, pixelMap, readBaselineOnGrid, type BaselineTile } from './pair.align.ts';
import { modelInputLuts, normaliseBands, validMask, type BandStretch } from './raster.normalise.ts';
import type { BandArray, RasterInfo, TileSource } from './raster.source.ts';
import type { WindowPx } from './window.grid.ts';

/**
 * One month's pixels over a region, kept as compact as they were read:
 *  - `interleaved`: 8-bit samples as the file stores them, every sample of a pixel together (for an
 *    8-bit model, which takes them so: the usual case, rows are handed over as read);
 *  - `bytes`: band-separate 8-bit reflectance (8-bit samples as read; others stretched to 0..255);
 *  - `luts`: raw 8- or 16-bit samples with a table per band to a float model's input value;
 *  - otherwise reflectance 0..1 (float samples, a baseline resampled or mosaicked onto the grid).
 */
export interface InputPlanes {
  width: number;
  height: number;
  /** Model band order, one array per band; empty when `interleaved` holds the samples. */
  bands: BandArray[];
  /** All samples of each pixel, `samples` per pixel; the model's bands are picked from them by `bandIdx`. */
  interleaved: { data: Uint8Array; samples: number; bandIdx: number[] } | null;
  luts: Float32Array[] | null;
  bytes: boolean;
  /** 1 where the pixel has data; null when every pixel has. */
  valid: Uint8Array | null;
}

/** A window of one raster as input planes (no resampling: the raster is on the target grid). */
export async function readInputPlanes(
  source: TileSource,
  win: WindowPx,
  bandIdx: number[],
  stretch: BandStretch | null | undefined,
  manifest: ModelManifest,
): Promise<InputPlanes> {
  const { width, height } = win;
  const base = { width, height, bands: [] as BandArray[], interleaved: null, luts: null, bytes: false, valid: null };
  if (manifest.inputType === 'uint8' && source.info.sampleType === 'uint8' && source.readInterleaved) {
    const read = await source.readInterleaved(win);
    if (read)
      return {
        ...base,
        interleaved: { ...read, bandIdx },
        bytes: true,
        valid: interleavedValidMask(source.info, read.data, read.samples, bandIdx),
      };
  }
  const raw = await source.readWindow(win, bandIdx);
  if (manifest.inputType === 'uint8') {
    if (source.info.sampleType === 'uint8')
      return { ...base, bands: raw, bytes: true, valid: validMask(source.info, raw) };
    const norm = normaliseBands(source.info, raw, stretch, bandIdx);
    return { ...base, bands: norm.bands.map(toBytes), bytes: true, valid: norm.valid };
  }
  const luts = modelInputLuts(source.info, bandIdx, stretch, manifest.normalisation.mean, manifest.normalisation.std);
  if (luts) return { ...base, bands: raw, luts, valid: validMask(source.info, raw) };
  const norm = normaliseBands(source.info, raw, stretch, bandIdx);
  return { ...base, bands: norm.bands, valid: norm.valid };
}

/** validMask for pixel-interleaved 8-bit samples: 0 where every model band equals the nodata value. */
function interleavedValidMask(
  info: RasterInfo,
  data: Uint8Array,
  samples: number,
  bandIdx: number[],
): Uint8Array | null {
  const nodata = info.nodata;
  if (nodata === null) return null;
  const n = data.length / samples;
  const valid = new Uint8Array(n).fill(1);
  if (samples === 3 && bandIdx.length === 3 && bandIdx[0] === 0 && bandIdx[1] === 1 && bandIdx[2] === 2) {
    // the common case, RGB: no loop over the bands per pixel
    for (let i = 0, o = 0; i < n; i++, o += 3)
      if (data[o] === nodata && data[o + 1] === nodata && data[o + 2] === nodata) valid[i] = 0;
    return valid;
  }
  for (let i = 0; i < n; i++) {
    let all = true;
    for (const b of bandIdx)
      if (data[i * samples + b] !== nodata) {
        all = false;
        break;
      }
    if (all) valid[i] = 0;
  }
  return valid;
}

/** Reflectance 0..1 as 8-bit samples 0..255. */
function toBytes(band: Float32Array): Uint8Array {
  const out = new Uint8Array(band.length);
  for (let i = 0; i < band.length; i++) out[i] = Math.round(band[i] * 255);
  return out;
}

/**
 * The earlier month on the current window's grid. The usual case, one baseline on the same grid
 * covering the whole window, is read as the current month is; anything else goes through
 * readBaselineOnGrid (shifts, resampling, mosaics, gaps, and the refusal of another CRS).
 */
export async function readBaselinePlanes(
  target: RasterInfo,
  win: WindowPx,
  baselines: BaselineTile[],
  bandIdx: number[],
  manifest: ModelManifest,
): Promise<InputPlanes> {
  if (baselines.length === 1 && sameCrs(baselines[0].source.info.crs, target.crs)) {
    const base = baselines[0];
    const shift = integerShift(pixelMap(target.geoTransform, base.source.info.geoTransform));
    const x = win.x + (shift?.dx ?? 0),
      y = win.y + (shift?.dy ?? 0);
    if (
      shift &&
      x >= 0 &&
      y >= 0 &&
      x + win.width <= base.source.info.widthPx &&
      y + win.height <= base.source.info.heightPx
    ) {
      return readInputPlanes(base.source, { ...win, x, y }, bandIdx, base.stretch, manifest);
    }
  }
  const read = await readBaselineOnGrid(target, win, baselines, bandIdx);
  const bytes = manifest.inputType === 'uint8';
  return {
    width: win.width,
    height: win.height,
    bands: bytes ? read.bands.map(toBytes) : read.bands,
    interleaved: null,
    luts: null,
    bytes,
    valid: read.valid,
  };
}

/** 1 where both months have data, or null when both have it everywhere. */
export function bothValid(a: InputPlanes, b: InputPlanes): Uint8Array | null {
  if (!a.valid) return b.valid;
  if (!b.valid) return a.valid;
  const n = a.valid.length;
  const out = new Uint8Array(n);
  // four pixels at a time where the masks' buffers allow 32-bit views
  const whole = a.valid.byteOffset % 4 === 0 && b.valid.byteOffset % 4 === 0 ? n >> 2 : 0;
  if (whole) {
    const a32 = new Uint32Array(a.valid.buffer, a.valid.byteOffset, whole);
    const b32 = new Uint32Array(b.valid.buffer, b.valid.byteOffset, whole);
    const o32 = new Uint32Array(out.buffer, 0, whole);
    for (let i = 0; i < whole; i++) o32[i] = a32[i] & b32[i];
  }
  for (let i = whole << 2; i < n; i++) out[i] = a.valid[i] & b.valid[i];
  return out;
}

/**
 * Writes a window of the planes, every model band, into the model's input tensor as window number
 * `k` of the batch, as the manifest's inputType says: 8-bit samples pixel-interleaved as they are,
 * floats band by band, normalised as the manifest says. Pixels without data get the value of reflectance 0, as normaliseBands gives them.
 */
export function fillWindow(
  planes: InputPlanes,
  win: WindowPx,
  manifest: ModelManifest,
  out: ModelInput,
  k: number,
): void {
  const nb = manifest.bands.indices.length;
  const plane = win.width * win.height;
  const offset = k * nb * plane;
  if (manifest.inputType === 'uint8') {
    // 8-bit models take pixel-interleaved windows
    if (!(out instanceof Uint8Array) || !planes.bytes) throw new Error('fillWindow: an 8-bit model takes 8-bit planes');
    if (planes.interleaved)
      fillInterleavedFromInterleaved(planes.interleaved, planes.valid, planes.width, win, nb, out, offset);
    else fillInterleavedFromBands(planes.bands as Uint8Array[], planes.valid, planes.width, win, out, offset);
    return;
  }
  if (!(out instanceof Float32Array) || planes.bytes)
    throw new Error('fillWindow: a float model takes float or lookup planes');
  const { mean, std } = manifest.normalisation;
  for (let c = 0; c < nb; c++) {
    const at = offset + c * plane;
    const lut = planes.luts?.[c];
    if (lut && planes.valid)
      fillLutMasked(planes.bands[c], lut, planes.valid, (0 - mean[c]) / std[c], planes.width, win, out, at);
    else if (lut) fillLut(planes.bands[c], lut, planes.width, win, out, at);
    else fillAffine(planes.bands[c] as Float32Array, mean[c], 1 / std[c], planes.width, win, out, at);
  }
}

/**
 * A window filled by fillWindow (`width` × `height`, `src` from its start) copied into `out` at window
 * `k` of `inWidth` × `inHeight` (modelInputSize), its last column and last row repeated into the
 * padding: pixel-interleaved for an 8-bit model, band after band for a float one.
 */
export function padWindow(
  src: ModelInput,
  width: number,
  height: number,
  inWidth: number,
  inHeight: number,
  manifest: ModelManifest,
  out: ModelInput,
  k: number,
): void {
  const nb = manifest.bands.indices.length;
  const inPlane = inWidth * inHeight;
  // pixel-interleaved: one plane of nb samples a pixel; band-separate: nb planes of one
  const [planes, px] = manifest.inputType === 'uint8' ? [1, nb] : [nb, 1];
  for (let c = 0; c < planes; c++) {
    const from = c * width * height * px,
      to = k * nb * inPlane + c * inPlane * px;
    const row = width * px,
      inRow = inWidth * px;
    for (let r = 0; r < height; r++) {
      const s = from + r * row,
        d = to + r * inRow;
      out.set(src.subarray(s, s + row), d);
      for (let x = width; x < inWidth; x++) out.copyWithin(d + x * px, d + (width - 1) * px, d + width * px);
    }
    for (let r = height; r < inHeight; r++)
      out.copyWithin(to + r * inRow, to + (height - 1) * inRow, to + height * inRow);
  }
}

/** Rows of interleaved samples into a pixel-interleaved window: whole rows copied when the file's samples are the model's bands. */
function fillInterleavedFromInterleaved(
  src: { data: Uint8Array; samples: number; bandIdx: number[] },
  valid: Uint8Array | null,
  widthPx: number,
  win: WindowPx,
  nb: number,
  out: Uint8Array,
  offset: number,
): void {
  const { data, samples, bandIdx } = src;
  const asStored = samples === nb && bandIdx.every((b, i) => b === i);
  for (let r = 0; r < win.height; r++) {
    const s = (win.y + r) * widthPx + win.x,
      d = offset + r * win.width * nb;
    if (asStored) {
      // the row as stored, then its runs without data zeroed (a warped scene's collar: few runs a row)
      out.set(data.subarray(s * samples, (s + win.width) * samples), d);
      if (!valid) continue;
      const row = valid.subarray(s, s + win.width);
      for (let x = row.indexOf(0); x !== -1;) {
        const end = row.indexOf(1, x);
        out.fill(0, d + x * nb, d + (end === -1 ? win.width : end) * nb);
        x = end === -1 ? -1 : row.indexOf(0, end);
      }
      continue;
    }
    for (let x = 0; x < win.width; x++) {
      const ok = !valid || valid[s + x];
      for (let c = 0; c < nb; c++) out[d + x * nb + c] = ok ? data[(s + x) * samples + bandIdx[c]] : 0;
    }
  }
}

function fillInterleavedFromBands(
  bands: Uint8Array[],
  valid: Uint8Array | null,
  widthPx: number,
  win: WindowPx,
  out: Uint8Array,
  offset: number,
): void {
  const nb = bands.length;
  for (let r = 0; r < win.height; r++) {
    const s = (win.y + r) * widthPx + win.x,
      d = offset + r * win.width * nb;
    for (let c = 0; c < nb; c++) {
      const band = bands[c];
      for (let x = 0; x < win.width; x++) out[d + x * nb + c] = !valid || valid[s + x] ? band[s + x] : 0;
    }
  }
}

function fillLut(
  src: BandArray,
  lut: Float32Array,
  widthPx: number,
  win: WindowPx,
  out: Float32Array,
  offset: number,
): void {
  for (let r = 0; r < win.height; r++) {
    const s = (win.y + r) * widthPx + win.x,
      d = offset + r * win.width;
    for (let x = 0; x < win.width; x++) out[d + x] = lut[src[s + x]];
  }
}

function fillLutMasked(
  src: BandArray,
  lut: Float32Array,
  valid: Uint8Array,
  empty: number,
  widthPx: number,
  win: WindowPx,
  out: Float32Array,
  offset: number,
): void {
  for (let r = 0; r < win.height; r++) {
    const s = (win.y + r) * widthPx + win.x,
      d = offset + r * win.width;
    for (let x = 0; x < win.width; x++) out[d + x] = valid[s + x] ? lut[src[s + x]] : empty;
  }
}

function fillAffine(
  src: Float32Array,
  mean: number,
  k: number,
  widthPx: number,
  win: WindowPx,
  out: Float32Array,
  offset: number,
): void {
  for (let r = 0; r < win.height; r++) {
    const s = (win.y + r) * widthPx + win.x,
      d = offset + r * win.width;
    for (let x = 0; x < win.width; x++) out[d + x] = (src[s + x] - mean) * k;
  }
}
