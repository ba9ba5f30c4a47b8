import { crsLabel, sameCrs } from '../core/crs.ts';
import { BadInputError } from '../core/errors.ts';
import { invertGeoTransform, type GeoTransform } from './geotransform.ts';
import { normaliseBands, type BandStretch } from './raster.normalise.ts';
import type { RasterInfo, TileSource } from './raster.source.ts';
import type { WindowPx } from './window.grid.ts';

/** A raster of the earlier month, with the stretch its samples need. */
export interface BaselineTile {
  source: TileSource;
  stretch?: BandStretch | null;
}

/** Affine map from target pixel-corner coordinates to source pixel-corner coordinates. */
export function pixelMap(target: GeoTransform, source: GeoTransform): GeoTransform {
  const inv = invertGeoTransform(source);
  // source_px = inv(source)( target(col,row) )
  return [
    inv[0] + inv[1] * target[0] + inv[2] * target[3],
    inv[1] * target[1] + inv[2] * target[4],
    inv[1] * target[2] + inv[2] * target[5],
    inv[3] + inv[4] * target[0] + inv[5] * target[3],
    inv[4] * target[1] + inv[5] * target[4],
    inv[4] * target[2] + inv[5] * target[5],
  ];
}

const EPS = 1e-6;

/** The integer (dx, dy) when the map is a pure whole-pixel shift (same grid, offset origin), else null. */
export function integerShift(m: GeoTransform): { dx: number; dy: number } | null {
  if (Math.abs(m[1] - 1) > EPS || Math.abs(m[5] - 1) > EPS || Math.abs(m[2]) > EPS || Math.abs(m[4]) > EPS) return null;
  const dx = Math.round(m[0]);
  const dy = Math.round(m[3]);
  if (Math.abs(m[0] - dx) > 1e-3 || Math.abs(m[3] - dy) > 1e-3) return null;
  return { dx, dy };
}

/**
 * The baseline's pixels for a window of the current month's grid, normalised like the current
 * image. Baseline tiles may lie on another grid: whole-pixel shifts are copied exactly, anything
 * else (sub-pixel offset, other resolution) is resampled bilinearly at the target pixel centres.
 * Pixels no baseline covers are marked invalid. A baseline in another CRS is refused: silently
 * comparing misaligned images would report every pixel as change.
 */
export async function readBaselineOnGrid(
  target: RasterInfo,
  win: WindowPx,
  baselines: BaselineTile[],
  bandIdx: number[],
): Promise<{ bands: Float32Array[]; valid: Uint8Array }> {
  const n = win.width * win.height;
  const bands = bandIdx.map(() => new Float32Array(n));
  const valid = new Uint8Array(n);
  for (const base of baselines) {
    const info = base.source.info;
    if (!sameCrs(info.crs, target.crs)) {
      throw new BadInputError(
        'crs_mismatch',
        `baseline ${info.file} is in ${crsLabel(info.crs)} but ${target.file} is in ${crsLabel(target.crs)}; reproject one month (gdalwarp -t_srs ${crsLabel(target.crs)}) before the batch`,
        { baseline: info.file, current: target.file },
      );
    }
    const m = pixelMap(target.geoTransform, info.geoTransform);
    const shift = integerShift(m);
    if (shift) await copyShifted(base, win, shift, bandIdx, bands, valid);
    else await resampleBilinear(base, win, m, bandIdx, bands, valid);
  }
  return { bands, valid };
}

async function copyShifted(
  base: BaselineTile,
  win: WindowPx,
  shift: { dx: number; dy: number },
  bandIdx: number[],
  bands: Float32Array[],
  valid: Uint8Array,
): Promise<void> {
  const info = base.source.info;
  const sx0 = Math.max(0, win.x + shift.dx);
  const sy0 = Math.max(0, win.y + shift.dy);
  const sx1 = Math.min(info.widthPx, win.x + win.width + shift.dx);
  const sy1 = Math.min(info.heightPx, win.y + win.height + shift.dy);
  if (sx1 <= sx0 || sy1 <= sy0) return;
  const srcWin = { x: sx0, y: sy0, width: sx1 - sx0, height: sy1 - sy0 };
  const raw = await base.source.readWindow(srcWin, bandIdx);
  const norm = normaliseBands(info, raw, base.stretch, bandIdx);
  const w = srcWin.width;
  for (let r = 0; r < srcWin.height; r++) {
    const ty = sy0 + r - shift.dy - win.y;
    const s0 = r * w,
      t0 = ty * win.width + (sx0 - shift.dx - win.x);
    let all = true;
    for (let c = 0; c < w; c++)
      if (!norm.valid[s0 + c]) {
        all = false;
        break;
      }
    if (all) {
      // the common case, a row with data everywhere: copy it whole
      valid.fill(1, t0, t0 + w);
      for (let b = 0; b < bands.length; b++) bands[b].set(norm.bands[b].subarray(s0, s0 + w), t0);
      continue;
    }
    for (let c = 0; c < w; c++) {
      if (!norm.valid[s0 + c]) continue;
      valid[t0 + c] = 1;
      for (let b = 0; b < bands.length; b++) bands[b][t0 + c] = norm.bands[b][s0 + c];
    }
  }
}

async function resampleBilinear(
  base: BaselineTile,
  win: WindowPx,
  m: GeoTransform,
  bandIdx: number[],
  bands: Float32Array[],
  valid: Uint8Array,
): Promise<void> {
  const info = base.source.info;
  const corners = [
    [win.x, win.y],
    [win.x + win.width, win.y],
    [win.x, win.y + win.height],
    [win.x + win.width, win.y + win.height],
  ].map(([c, r]) => [m[0] + c * m[1] + r * m[2], m[3] + c * m[4] + r * m[5]]);
  const sx0 = Math.max(0, Math.floor(Math.min(...corners.map((p) => p[0]))) - 1);
  const sy0 = Math.max(0, Math.floor(Math.min(...corners.map((p) => p[1]))) - 1);
  const sx1 = Math.min(info.widthPx, Math.ceil(Math.max(...corners.map((p) => p[0]))) + 1);
  const sy1 = Math.min(info.heightPx, Math.ceil(Math.max(...corners.map((p) => p[1]))) + 1);
  if (sx1 <= sx0 || sy1 <= sy0) return;
  const sw = sx1 - sx0;
  const sh = sy1 - sy0;
  const raw = await base.source.readWindow({ x: sx0, y: sy0, width: sw, height: sh }, bandIdx);
  const norm = normaliseBands(info, raw, base.stretch, bandIdx);
  for (let r = 0; r < win.height; r++) {
    for (let c = 0; c < win.width; c++) {
      const tc = win.x + c + 0.5;
      const tr = win.y + r + 0.5;
      // Source pixel-centre coordinates relative to the window read.
      const fx = m[0] + tc * m[1] + tr * m[2] - 0.5 - sx0;
      const fy = m[3] + tc * m[4] + tr * m[5] - 0.5 - sy0;
      if (fx < -0.5 || fy < -0.5 || fx > sw - 0.5 || fy > sh - 0.5) continue;
      const x0 = Math.max(0, Math.min(sw - 1, Math.floor(fx)));
      const y0 = Math.max(0, Math.min(sh - 1, Math.floor(fy)));
      const x1 = Math.min(sw - 1, x0 + 1);
      const y1 = Math.min(sh - 1, y0 + 1);
      const ax = Math.max(0, Math.min(1, fx - x0));
      const ay = Math.max(0, Math.min(1, fy - y0));
      const i00 = y0 * sw + x0,
        i01 = y0 * sw + x1,
        i10 = y1 * sw + x0,
        i11 = y1 * sw + x1;
      if (!(norm.valid[i00] && norm.valid[i01] && norm.valid[i10] && norm.valid[i11])) continue;
      const ti = r * win.width + c;
      valid[ti] = 1;
      for (let b = 0; b < bands.length; b++) {
        const s = norm.bands[b];
        bands[b][ti] = (s[i00] * (1 - ax) + s[i01] * ax) * (1 - ay) + (s[i10] * (1 - ax) + s[i11] * ax) * ay;
      }
    }
  }
}
