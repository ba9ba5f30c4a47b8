import type { BandArray, RasterInfo } from './raster.source.ts';

/** Per-band linear stretch [low, high] → [0, 1], for sample types wider than 8 bits. */
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
 */
export function normaliseBands(info: RasterInfo, raw: BandArray[], stretch?: BandStretch | null): { bands: Float32Array[]; valid: Uint8Array } {
  const n = raw[0]?.length ?? 0;
  const valid = new Uint8Array(n).fill(1);
  const nodata = info.nodata;
  if (nodata !== null || info.sampleType.startsWith('float')) {
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
  }
  const bands = raw.map((b, bi) => {
    let low = 0;
    let high = 255;
    if (info.sampleType !== 'uint8') {
      low = stretch?.low[bi] ?? 0;
      high = stretch?.high[bi] ?? fullRange(info.sampleType);
    }
    const scale = high > low ? 1 / (high - low) : 0;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const v = (b[i] - low) * scale;
      out[i] = valid[i] ? (v < 0 ? 0 : v > 1 ? 1 : v) : 0;
    }
    return out;
  });
  return { bands, valid };
}

function fullRange(t: RasterInfo['sampleType']): number {
  switch (t) {
    case 'uint16': return 65535;
    case 'int16': return 32767;
    case 'uint32': return 4294967295;
    case 'int32': return 2147483647;
    default: return 1;
  }
}

/** 2nd and 98th percentile of each band over a sample of pixels (nodata excluded). */
export function percentileStretch(samples: BandArray[], nodata: number | null, lowPct = 2, highPct = 98): BandStretch {
  const low: number[] = [];
  const high: number[] = [];
  for (const b of samples) {
    const vals = Array.from(b).filter((v) => Number.isFinite(v) && v !== nodata).sort((x, y) => x - y);
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
