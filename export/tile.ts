import sharp from 'sharp';
import type { BaselineTile } from '../pipeline/pair.align.ts';
import { readChipRgb, svgPath } from './chip.ts';

/** A polygon or multipolygon as GeoJSON geometry, in the tiles' CRS. */
interface ClipGeometry {
  type: string;
  coordinates: unknown;
}

export interface MapTileRequest {
  /** Imagery tiles covering the map tile (same CRS), with their stretches. */
  tiles: BaselineTile[];
  /** The map tile's extent: [minX, minY, maxX, maxY]. */
  boundsWorld: [number, number, number, number];
  /** Metres per pixel. */
  resM: number;
  sizePx: number;
  /** Only pixels inside this polygon are shown (a town user's town and its margin); null: all. */
  clip: ClipGeometry | null;
}

/**
 * A web-map tile as a PNG: the imagery mosaicked onto the tile's grid, transparent where no tile covers
 * it or outside the clip polygon.
 */
export async function renderMapTilePng(req: MapTileRequest): Promise<Buffer> {
  const mask = req.clip ? await clipMask(req.clip, req.boundsWorld, req.resM, req.sizePx) : null;
  const { rgb, valid } = await readChipRgb(req.tiles, req.boundsWorld, req.resM);
  const n = req.sizePx ** 2;
  const rgba = Buffer.alloc(n * 4);
  for (let i = 0; i < n; i++) {
    rgba[i * 4] = rgb[i * 3];
    rgba[i * 4 + 1] = rgb[i * 3 + 1];
    rgba[i * 4 + 2] = rgb[i * 3 + 2];
    rgba[i * 4 + 3] = valid[i] && (!mask || mask[i] >= 128) ? 255 : 0;
  }
  return sharp(rgba, { raw: { width: req.sizePx, height: req.sizePx, channels: 4 } })
    .png({ compressionLevel: 3 })
    .toBuffer();
}

/** The tile's pixels inside a polygon (in the tile's CRS), 0–255 per pixel, drawn by libvips from an SVG. */
async function clipMask(
  geom: ClipGeometry,
  bounds: [number, number, number, number],
  resM: number,
  sizePx: number,
): Promise<Uint8Array> {
  const polys = (
    geom.type === 'Polygon' ? [geom.coordinates] : geom.type === 'MultiPolygon' ? geom.coordinates : []
  ) as number[][][][];
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${sizePx}" height="${sizePx}"><rect width="${sizePx}" height="${sizePx}" fill="black"/><path d="${svgPath(polys, bounds[0], bounds[3], resM)}" fill="white" fill-rule="evenodd"/></svg>`;
  const { data } = await sharp(Buffer.from(svg)).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
  return data;
}
