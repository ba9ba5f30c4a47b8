/**
 * Affine georeferencing in GDAL's order: [originX, pixelWidth, rowRotation, originY, colRotation, pixelHeight].
 * World X = gt[0] + col * gt[1] + row * gt[2];  World Y = gt[3] + col * gt[4] + row * gt[5].
 * (col, row) are pixel-corner coordinates: (0, 0) is the outer top-left corner of the first pixel,
 * (col + 0.5, row + 0.5) the centre of pixel (col, row). This is GDAL's pixel-is-area convention.
 */
export type GeoTransform = readonly [number, number, number, number, number, number];

export interface PointXY {
  x: number;
  y: number;
}

export function pixelToWorld(gt: GeoTransform, col: number, row: number): PointXY {
  return { x: gt[0] + col * gt[1] + row * gt[2], y: gt[3] + col * gt[4] + row * gt[5] };
}

export function invertGeoTransform(gt: GeoTransform): GeoTransform {
  const det = gt[1] * gt[5] - gt[2] * gt[4];
  if (det === 0 || !Number.isFinite(det)) throw new Error(`geotransform [${gt.join(', ')}] is not invertible`);
  const a = gt[5] / det;
  const b = -gt[2] / det;
  const d = -gt[4] / det;
  const e = gt[1] / det;
  return [-(a * gt[0] + b * gt[3]), a, b, -(d * gt[0] + e * gt[3]), d, e];
}

/** World → fractional pixel-corner coordinates (col, row). */
export function worldToPixel(gt: GeoTransform, x: number, y: number): { col: number; row: number } {
  const inv = invertGeoTransform(gt);
  return { col: inv[0] + x * inv[1] + y * inv[2], row: inv[3] + x * inv[4] + y * inv[5] };
}

/** Area of one pixel in CRS units² (m² for a projected CRS in metres). */
export function pixelAreaUnits2(gt: GeoTransform): number {
  return Math.abs(gt[1] * gt[5] - gt[2] * gt[4]);
}

/** True when the raster has no rotation terms, so windows map to axis-aligned world boxes. */
export function isNorthUp(gt: GeoTransform): boolean {
  return gt[2] === 0 && gt[4] === 0;
}

/** The geotransform of a pixel window (col0,row0 offset) of a raster. */
export function windowGeoTransform(gt: GeoTransform, col0: number, row0: number): GeoTransform {
  const o = pixelToWorld(gt, col0, row0);
  return [o.x, gt[1], gt[2], o.y, gt[4], gt[5]];
}

/**
 * Ground sample distance in metres along columns and rows. For a geographic CRS the degree
 * sizes are converted at the raster's latitude with the spherical approximation (good to <0.5 %,
 * enough for a GSD sanity check; areas are never computed this way).
 */
export function gsdMetres(gt: GeoTransform, geographic: boolean, latitudeDeg = 0): { x: number; y: number } {
  const sx = Math.hypot(gt[1], gt[4]);
  const sy = Math.hypot(gt[2], gt[5]);
  if (!geographic) return { x: sx, y: sy };
  const mPerDegLat = 111_320;
  return { x: sx * mPerDegLat * Math.cos((latitudeDeg * Math.PI) / 180), y: sy * mPerDegLat };
}
