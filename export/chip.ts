import sharp from 'sharp';
import type { GeoTransform } from '../pipeline/geotransform.ts';
import { readBaselineOnGrid, type BaselineTile } from '../pipeline/pair.align.ts';
import type { RasterInfo } from '../pipeline/raster.source.ts';

export interface ChipRequest {
  /** Tiles covering the chip (same CRS), with their stretches. */
  tiles: BaselineTile[];
  /** Chip extent in the tiles' CRS: [minX, minY, maxX, maxY]. */
  boundsWorld: [number, number, number, number];
  /** Chip pixel size in CRS units (metres). */
  gsdM: number;
  /** Outline to draw: polygons of rings in the same CRS. */
  outline: number[][][][];
  outlineColour: string;
  /** Width of the returned PNG in pixels (height keeps the aspect). */
  widthPx: number;
}

/**
 * A PNG image chip of the imagery under a patch, mosaicked from every covering tile on a grid of
 * its own (resampled where the tiles' grid differs), with the patch outline drawn on top.
 * Areas no tile covers are light grey.
 */
export async function renderChip(req: ChipRequest): Promise<Buffer> {
  const [minX, , , maxY] = req.boundsWorld;
  const { rgb, width: w, height: h } = await readChipRgb(req.tiles, req.boundsWorld, req.gsdM, 220);
  const stroke = Math.max(1.5, w / 150);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><path d="${svgPath(req.outline, minX, maxY, req.gsdM)}" fill="none" stroke="${req.outlineColour}" stroke-width="${stroke}" fill-rule="evenodd"/></svg>`;
  // Two passes: sharp resizes before it composites, so the outline is drawn at the chip's own size first.
  const drawn = await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
    .composite([{ input: Buffer.from(svg) }])
    .png()
    .toBuffer();
  return sharp(drawn).resize({ width: req.widthPx, kernel: 'lanczos3' }).png().toBuffer();
}

/** SVG path data of polygons (rings in world units) on a pixel grid whose top-left corner is (minX, maxY). */
export function svgPath(polys: number[][][][], minX: number, maxY: number, gsd: number): string {
  const toPx = (p: number[]) => `${((p[0] - minX) / gsd).toFixed(2)},${((maxY - p[1]) / gsd).toFixed(2)}`;
  return polys.map((poly) => poly.map((ring) => `M${ring.map(toPx).join(' L')} Z`).join(' ')).join(' ');
}

/**
 * The RGB pixels (8-bit, interleaved) of an extent, mosaicked from every covering tile on a grid of
 * its own; `valid` marks the pixels some tile covered (others are `fill`).
 */
export async function readChipRgb(
  tiles: BaselineTile[],
  boundsWorld: [number, number, number, number],
  gsdM: number,
  fill = 0,
): Promise<{ rgb: Buffer; valid: Uint8Array; width: number; height: number }> {
  const [minX, minY, maxX, maxY] = boundsWorld;
  const w = Math.max(1, Math.ceil((maxX - minX) / gsdM - 1e-6));
  const h = Math.max(1, Math.ceil((maxY - minY) / gsdM - 1e-6));
  const gt: GeoTransform = [minX, gsdM, 0, maxY, 0, -gsdM];
  const rgb = Buffer.alloc(w * h * 3, fill);
  let valid: Uint8Array = new Uint8Array(w * h);
  if (tiles.length) {
    const info: RasterInfo = {
      file: 'chip',
      widthPx: w,
      heightPx: h,
      bandCount: 3,
      sampleType: 'uint8',
      nodata: null,
      crs: tiles[0].source.info.crs,
      geoTransform: gt,
    };
    const read = await readBaselineOnGrid(info, { x: 0, y: 0, width: w, height: h }, tiles, [0, 1, 2]);
    valid = read.valid;
    for (let i = 0; i < w * h; i++) {
      if (!valid[i]) continue;
      for (let b = 0; b < 3; b++) rgb[i * 3 + b] = Math.round(Math.min(1, Math.max(0, read.bands[b][i])) * 255);
    }
  }
  return { rgb, valid, width: w, height: h };
}
