import type { GeoTransform } from './geotransform.ts';
import type { BandArray, RasterInfo, TileSource } from './raster.source.ts';
import type { WindowPx } from './window.grid.ts';

/**
 * A window of a raster seen as a raster of its own: same CRS and pixel grid, geotransform moved
 * to the window's corner, reads passed through with the offset. Lets the pipeline run a scene
 * part by part without copying it.
 */
export class WindowView implements TileSource {
  readonly info: RasterInfo;
  constructor(private readonly source: TileSource, readonly window: WindowPx) {
    const s = source.info;
    if (window.x < 0 || window.y < 0 || window.x + window.width > s.widthPx || window.y + window.height > s.heightPx) {
      throw new Error(`${s.file}: window ${window.x},${window.y} ${window.width}×${window.height} lies outside the ${s.widthPx}×${s.heightPx} raster`);
    }
    this.info = { ...s, widthPx: window.width, heightPx: window.height, geoTransform: shiftGeoTransform(s.geoTransform, window.x, window.y) };
  }

  readWindow(win: WindowPx, bands?: number[]): Promise<BandArray[]> {
    return this.source.readWindow({ ...win, x: win.x + this.window.x, y: win.y + this.window.y }, bands);
  }

  async close(): Promise<void> {
    // the underlying source belongs to whoever opened it
  }
}

/** The geotransform of a window whose top-left pixel is (x, y) of the original grid. */
export function shiftGeoTransform(gt: GeoTransform, x: number, y: number): GeoTransform {
  return [gt[0] + x * gt[1] + y * gt[2], gt[1], gt[2], gt[3] + x * gt[4] + y * gt[5], gt[4], gt[5]];
}
