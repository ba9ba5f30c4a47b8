import { simplify } from '@turf/simplify';
import type { Feature, MultiPolygon, Polygon } from 'geojson';
import { pixelAreaUnits2, pixelToWorld, type GeoTransform } from './geotransform.ts';
import { openMask } from './mask.open.ts';
import { splitTouching } from './mask.split.ts';
import { traceMask } from './mask.trace.ts';
import { arrayPool } from './array.pool.ts';

export interface VectorizeOptions {
  /** Pixels with value ≥ threshold are change. Default 0.5. */
  threshold?: number;
  /** Drop polygons smaller than this many m² (before simplification). Default 0. */
  minAreaM2?: number;
  /** Douglas–Peucker tolerance in metres; 0 or absent keeps the exact pixel outline. */
  simplifyToleranceM?: number;
  /** Metres per CRS unit (1 for projected CRSs in metres; ~111 320 for degrees). */
  metresPerUnit?: number;
  /**
   * Where the values start on the geotransform's grid (a part of a scene): coordinates are
   * computed from the whole scene's pixel numbers, so parts' shared edges match exactly.
   */
  offsetPx?: { x: number; y: number };
  /**
   * Building-interior probability on the same grid (the model's second output): touching buildings
   * are split at its seeds into one polygon each (mask.split.ts).
   */
  interior?: Float32Array;
  /** Interior probability that makes a seed. Default 0.5. */
  interiorThreshold?: number;
  /**
   * Open the mask by a (2·openingPx+1)² square before tracing (mask.open.ts): slivers and necks
   * narrower than that go, the rest keeps its outline. Default 0 (exact outlines).
   */
  openingPx?: number;
  /**
   * The part of the raster whose polygons are wanted (pixels, relative to the raster); the rest is
   * context for the opening and is cleared before tracing. Default: all of it.
   */
  core?: { x: number; y: number; width: number; height: number };
}

export interface ChangeFeatureProps {
  /** Exact area of the change pixels in m² (pixel count × pixel area). */
  area_m2: number;
  pixel_count: number;
  /** Mean change probability over the polygon's pixels (when probabilities were given). */
  mean_probability: number | null;
}

/**
 * Threshold a probability (or 0/1 mask) raster and trace it into polygons in the raster's CRS,
 * through the geotransform at pixel corners. Holes are kept; 8-connected foreground (see
 * mask.trace.ts). Rings are wound per RFC 7946 (shells counter-clockwise, holes clockwise).
 * Values: Float32Array probabilities, or a Uint8Array mask.
 */
export function vectorizeRaster(
  values: Float32Array | Uint8Array,
  widthPx: number,
  heightPx: number,
  gt: GeoTransform,
  opts: VectorizeOptions = {},
): Feature<Polygon | MultiPolygon, ChangeFeatureProps>[] {
  const threshold = opts.threshold ?? 0.5;
  let mask: Uint8Array;
  if (values instanceof Uint8Array && threshold > 0 && threshold <= 1 && !opts.interior) mask = values; // already a 0/1 (or 0/255) mask: any non-zero pixel is change
  else if (values instanceof Uint8Array) {
    mask = arrayPool.take(Uint8Array, widthPx * heightPx);
    for (let i = 0; i < mask.length; i++) mask[i] = values[i] !== 0 ? 1 : 0;
  } else {
    mask = arrayPool.take(Uint8Array, widthPx * heightPx);
    for (let i = 0; i < mask.length; i++) mask[i] = values[i] >= threshold ? 1 : 0;
  }
  if ((opts.openingPx || opts.core) && mask === values) mask = Uint8Array.from(values); // changed in place: never the caller's array
  if (opts.interior) splitTouching(mask, opts.interior, widthPx, heightPx, { threshold: opts.interiorThreshold });
  if (opts.openingPx) openMask(mask, widthPx, heightPx, opts.openingPx);
  if (opts.core) clearOutside(mask, widthPx, heightPx, opts.core);
  const isProbability = !(values instanceof Uint8Array);
  const comps = traceMask(mask, widthPx, heightPx, isProbability ? values : undefined);
  if (mask !== values) arrayPool.give(mask);
  const metresPerUnit = opts.metresPerUnit ?? 1;
  const pixelAreaM2 = pixelAreaUnits2(gt) * metresPerUnit * metresPerUnit;
  const minAreaM2 = opts.minAreaM2 ?? 0;
  const features: Feature<Polygon | MultiPolygon, ChangeFeatureProps>[] = [];
  // Deterministic order: by top-left pixel of each component's bounding box.
  comps.sort((a, b) => a.bbox[1] - b.bbox[1] || a.bbox[0] - b.bbox[0]);
  for (const comp of comps) {
    const areaM2 = comp.pixelCount * pixelAreaM2;
    if (areaM2 < minAreaM2) continue;
    const ox = opts.offsetPx?.x ?? 0,
      oy = opts.offsetPx?.y ?? 0;
    const polygons = comp.polygons.map((poly) =>
      poly.map((ring, i) =>
        orient(
          ring.map(([c, r]) => {
            const p = pixelToWorld(gt, c + ox, r + oy);
            return [p.x, p.y];
          }),
          i === 0,
        ),
      ),
    );
    let feature: Feature<Polygon | MultiPolygon, ChangeFeatureProps> = {
      type: 'Feature',
      properties: {
        area_m2: round(areaM2, 4),
        pixel_count: comp.pixelCount,
        mean_probability: isProbability ? round(comp.valueSum / comp.pixelCount, 4) : null,
      },
      geometry:
        polygons.length === 1
          ? { type: 'Polygon', coordinates: polygons[0] }
          : { type: 'MultiPolygon', coordinates: polygons },
    };
    if (opts.simplifyToleranceM && opts.simplifyToleranceM > 0) {
      feature = simplify(feature, {
        tolerance: opts.simplifyToleranceM / metresPerUnit,
        highQuality: true,
        mutate: true,
      });
    }
    features.push(feature);
  }
  return features;
}

/** Clears every pixel of `mask` outside `core`. */
function clearOutside(
  mask: Uint8Array,
  widthPx: number,
  heightPx: number,
  core: { x: number; y: number; width: number; height: number },
): void {
  for (let y = 0; y < heightPx; y++) {
    const row = y * widthPx;
    if (y < core.y || y >= core.y + core.height) mask.fill(0, row, row + widthPx);
    else {
      mask.fill(0, row, row + core.x);
      mask.fill(0, row + core.x + core.width, row + widthPx);
    }
  }
}

/** Shells counter-clockwise, holes clockwise (RFC 7946 §3.1.6), whatever the sign of the pixel height. */
function orient(ring: number[][], shell: boolean): number[][] {
  let a = 0;
  for (let i = 0; i + 1 < ring.length; i++) a += ring[i][0] * ring[i + 1][1] - ring[i + 1][0] * ring[i][1];
  const ccw = a > 0;
  return ccw === shell ? ring : ring.reverse();
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}
