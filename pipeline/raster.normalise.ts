import type { BandArray, RasterInfo } from './raster.source.ts';

/** Per-band linear stretch [low, high] → [0, 1], for sample types wider than 8 bits, indexed by the file's band. */
export interface BandStretch {
  low: number[];
  high: number[];
}

/**
 * Raw samples → reflectance-like floats in 0..1 plus a validity mask.
 *  - uint8: value / 255.
 *  - uint16 and others: linear stretch per band from `stretch` (tuban stores the 2nd and 98th
 *    percentiles of each band at registration), clipped to 0..1; without a stretch, the type's
 *    full range (uint16: 0..65535) is used, which is rarely what you want for 11/12-bit sensors.
 *  - A pixel is invalid when every band equals the nodata value, or any band is NaN.
 * `bandIdx` names the file band each raw array came from (default: raw[i] is band i), to pick its stretch.
 */
export function normaliseBands(
  info: RasterInfo,
  raw: BandArray[],
  stretch?: BandStretch | null,
  bandIdx?: number[],
): { bands: Float32Array[]; valid: Uint8Array } {
  const n = raw[0]?.length ?? 0;
  const valid = validMask(info, raw) ?? new Uint8Array(n).fill(1);
  const bands = raw.map((b, bi) => {
    const { low, scale } = bandScale(info, bandIdx?.[bi] ?? bi, stretch);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const v = (b[i] - low) * scale;
      out[i] = valid[i] ? (v < 0 ? 0 : v > 1 ? 1 : v) : 0;
    }
    return out;
  });
  return { bands, valid };
}

/**
 * Which pixels hold data: 0 where every band equals the nodata value or any band is NaN. Null
 * when no pixel can lack data (an integer raster without a nodata value), so callers skip the mask.
 */
export function validMask(info: RasterInfo, raw: BandArray[]): Uint8Array | null {
  const nodata = info.nodata;
  if (nodata === null && !info.sampleType.startsWith('float')) return null;
  const n = raw[0]?.length ?? 0;
  const valid = new Uint8Array(n).fill(1);
  for (let i = 0; i < n; i++) {
    let allNodata = nodata !== null;
    for (const b of raw) {
      const v = b[i];
      if (Number.isNaN(v)) {
        allNodata = true;
        break;
      }
      if (v !== nodata) allNodata = false;
    }
    if (allNodata) valid[i] = 0;
  }
  return valid;
}

/**
 * For 8- and 16-bit unsigned samples, a table per band from the raw sample straight to the model's
 * input value, (stretched reflectance − mean) / std, the same value normaliseBands and the
 * manifest's normalisation give in two passes. Null for other sample types.
 */
export function modelInputLuts(
  info: RasterInfo,
  bandIdx: number[],
  stretch: BandStretch | null | undefined,
  mean: number[],
  std: number[],
): Float32Array[] | null {
  const size = info.sampleType === 'uint8' ? 256 : info.sampleType === 'uint16' ? 65536 : 0;
  if (!size) return null;
  return bandIdx.map((band, bi) => {
    const { low, scale } = bandScale(info, band, stretch);
    const lut = new Float32Array(size);
    for (let v = 0; v < size; v++) {
      const r = Math.fround((v - low) * scale);
      lut[v] = ((r < 0 ? 0 : r > 1 ? 1 : r) - mean[bi]) / std[bi];
    }
    return lut;
  });
}

function bandScale(info: RasterInfo, bi: number, stretch?: BandStretch | null): { low: number; scale: number } {
  let low = 0;
  let high = 255;
  if (info.sampleType !== 'uint8') {
    low = stretch?.low[bi] ?? 0;
    high = stretch?.high[bi] ?? fullRange(info.sampleType);
  }
  return { low, scale: high > low ? 1 / (high - low) : 0 };
}

function fullRange(t: RasterInfo['sampleType']): number {
  switch (t) {
    case 'uint16':
      return 65535;
    case 'int16':
      return 32767;
    case 'uint32':
      return 4294967295;
    case 'int32':
      return 2147483647;
    default:
      return 1;
  }
}

/** 2nd and 98th percentile of each band over a sample of pixels (nodata excluded). */
export function percentileStretch(samples: BandArray[], nodata: number | null, lowPct = 2, highPct = 98): BandStretch {
  const low: number[] = [];
  const high: number[] = [];
  for (const b of samples) {
    const vals = Array.from(b)
      .filter((v) => Number.isFinite(v) && v !== nodata)
      .sort((x, y) => x - y);
    if (vals.length === 0) {
      low.push(0);
      high.push(1);
      continue;
    }
    low.push(vals[Math.floor(((vals.length - 1) * lowPct) / 100)]);
    high.push(vals[Math.ceil(((vals.length - 1) * highPct) / 100)]);
  }
  return { low, high };
}
