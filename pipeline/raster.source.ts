import type { Crs } from '../core/crs.ts';
import type { GeoTransform } from './geotransform.ts';
import type { WindowPx } from './window.grid.ts';

export type SampleType = 'uint8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
export type BandArray = Uint8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

/** What tuban knows of a raster after reading its header. */
export interface RasterInfo {
  /** Path or URL the raster was read from (used in every error message). */
  file: string;
  widthPx: number;
  heightPx: number;
  bandCount: number;
  sampleType: SampleType;
  nodata: number | null;
  crs: Crs;
  geoTransform: GeoTransform;
}

/** Read access to one raster, one window at a time. The only way the pipeline touches pixels. */
export interface TileSource {
  readonly info: RasterInfo;
  /** Band-separate samples of a window that lies inside the raster. */
  readWindow(win: WindowPx, bands?: number[]): Promise<BandArray[]>;
  /**
   * The window's 8-bit samples as stored, pixel-interleaved (every sample of a pixel together, all
   * `samples` of them), when the source can hand them over without separating bands; else null.
   */
  readInterleaved?(win: WindowPx): Promise<{ data: Uint8Array; samples: number } | null>;
  close(): Promise<void>;
}

/** An in-memory raster, for tests and for rasters computed in the pipeline. */
export class MemorySource implements TileSource {
  constructor(
    readonly info: RasterInfo,
    private readonly bands: BandArray[],
  ) {
    for (const [i, b] of bands.entries()) {
      if (b.length !== info.widthPx * info.heightPx)
        throw new Error(`${info.file}: band ${i} has ${b.length} samples, expected ${info.widthPx * info.heightPx}`);
    }
  }

  async readWindow(win: WindowPx, bands?: number[]): Promise<BandArray[]> {
    checkWindow(this.info, win);
    const idx = bands ?? this.bands.map((_, i) => i);
    return idx.map((bi) => {
      const src = this.bands[bi];
      const out = new (src.constructor as { new (n: number): BandArray })(win.width * win.height);
      for (let r = 0; r < win.height; r++) {
        const start = (win.y + r) * this.info.widthPx + win.x;
        out.set(src.subarray(start, start + win.width), r * win.width);
      }
      return out;
    });
  }

  async close(): Promise<void> {}
}

export function checkWindow(info: RasterInfo, win: WindowPx): void {
  if (
    win.x < 0 ||
    win.y < 0 ||
    win.width <= 0 ||
    win.height <= 0 ||
    win.x + win.width > info.widthPx ||
    win.y + win.height > info.heightPx
  ) {
    throw new Error(
      `${info.file}: window x=${win.x} y=${win.y} ${win.width}×${win.height} lies outside the ${info.widthPx}×${info.heightPx} raster`,
    );
  }
}
