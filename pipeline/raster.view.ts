import { windowGeoTransform } from './geotransform.ts';
import { checkWindow, type BandArray, type RasterInfo, type TileSource } from './raster.source.ts';
import type { WindowPx } from './window.grid.ts';

/**
 * A window of a raster seen as a raster of its own: same CRS and pixel grid, geotransform moved
 * to the window's corner, reads passed through with the offset. Lets the pipeline run a scene
 * part by part without copying it.
 */
export class WindowView implements TileSource {
  readonly info: RasterInfo;
  constructor(
    private readonly source: TileSource,
    readonly window: WindowPx,
  ) {
    checkWindow(source.info, window);
    this.info = {
      ...source.info,
      widthPx: window.width,
      heightPx: window.height,
      geoTransform: windowGeoTransform(source.info.geoTransform, window.x, window.y),
    };
  }

  readWindow(win: WindowPx, bands?: number[]): Promise<BandArray[]> {
    return this.source.readWindow({ ...win, x: win.x + this.window.x, y: win.y + this.window.y }, bands);
  }

  async readInterleaved(win: WindowPx): Promise<{ data: Uint8Array; samples: number } | null> {
    checkWindow(this.info, win);
    return this.source.readInterleaved
      ? this.source.readInterleaved({ ...win, x: win.x + this.window.x, y: win.y + this.window.y })
      : null;
  }

  async close(): Promise<void> {
    // the underlying source belongs to whoever opened it
  }
}
