import { GeoTIFF, type GeoTIFFImage } from 'geotiff';
import './tiff.decoders.ts'; // geotiff.js decompresses with a bound from here on
import { crsFromGeoKeys, type GeoKeys } from '../../core/crs.ts';
import { checkUnchanged, openByteSource, type ByteSource } from './byte.source.ts';
import { checkTiffStructure } from './tiff.structure.ts';
import { FastTiffReader } from './tiff.fastread.ts';
import { TiffTags } from './tiff.tags.ts';
import { BadInputError, TubanError } from '../../core/errors.ts';
import type { GeoTransform } from '../geotransform.ts';
import { checkWindow, type BandArray, type RasterInfo, type SampleType, type TileSource } from '../raster.source.ts';
import type { WindowPx } from '../window.grid.ts';

const RASTER_PIXEL_IS_POINT = 2;

/**
 * A GeoTIFF read window by window (only the strips/tiles a window touches are read and decoded),
 * by FastTiffReader for the common 8-bit layouts and by geotiff.js for the rest, from a local
 * file, an HTTP(S) URL or an S3 object (byte.source.ts). Open with `GeoTiffSource.open`; close when done.
 */
export class GeoTiffSource implements TileSource {
  private readonly ycbcr: boolean;

  private constructor(
    readonly info: RasterInfo,
    private readonly tiff: GeoTIFF,
    private readonly image: GeoTIFFImage,
    private readonly fast: FastTiffReader | null,
    /** Where the bytes come from: its requests and bytes say what reading cost. */
    readonly bytes: ByteSource,
  ) {
    this.ycbcr = new TiffTags(image).number('PhotometricInterpretation', 2) === 6;
  }

  /**
   * `file`: a path, an http(s):// URL or s3://bucket/key. `maxPixels`: refuse images larger than
   * this (registration passes TUBAN_MAX_IMAGE_MPX). `expect`: the size and ETag registration saw;
   * a readable file that no longer has them is refused (changed_since_registration; a damaged one
   * is refused as corrupt first, the more telling reason).
   */
  static async open(
    file: string,
    opts: { maxPixels?: number; expect?: { bytes?: number | null; etag?: string | null } } = {},
  ): Promise<GeoTiffSource> {
    const bytes = await openByteSource(file);
    try {
      const src = await GeoTiffSource.openBytes(file, bytes, opts.maxPixels);
      if (opts.expect) checkUnchanged(bytes, opts.expect);
      return src;
    } catch (err) {
      await bytes.close(); // a refused file keeps no descriptor open
      throw err;
    }
  }

  private static async openBytes(file: string, bytes: ByteSource, maxPixels?: number): Promise<GeoTiffSource> {
    await checkTiffStructure(bytes, maxPixels);
    let tiff: GeoTIFF;
    try {
      tiff = await GeoTIFF.fromSource(geotiffSourceOf(bytes));
    } catch (err) {
      if (err instanceof TubanError) throw err;
      throw new BadInputError(
        'corrupt_tiff',
        `${file}: not a readable TIFF (${(err as Error).message})`,
        { file },
        { cause: err },
      );
    }
    try {
      let image: GeoTIFFImage;
      try {
        image = await tiff.getImage(0);
      } catch (err) {
        if (err instanceof TubanError) throw err;
        throw new BadInputError(
          'corrupt_tiff',
          `${file}: not a readable TIFF (${(err as Error).message})`,
          { file },
          { cause: err },
        );
      }
      const info = rasterInfoOf(file, image);
      checkCompression(file, image);
      const blocks = await checkDataWithinFile(file, image, bytes.size);
      return new GeoTiffSource(info, tiff, image, FastTiffReader.forImage(bytes, image, blocks), bytes);
    } catch (err) {
      await tiff.close?.();
      throw err;
    }
  }

  async readWindow(win: WindowPx, bands?: number[]): Promise<BandArray[]> {
    checkWindow(this.info, win);
    try {
      if (this.fast) return await this.fast.read(win, bands ?? [...Array(this.info.bandCount).keys()]);
      const window = [win.x, win.y, win.x + win.width, win.y + win.height];
      if (this.ycbcr) {
        // JPEG-in-TIFF with YCbCr photometry: readRasters would hand back Y, Cb, Cr; readRGB converts to RGB as GDAL does.
        const rgb = (await this.image.readRGB({ window, interleave: false })) as unknown as BandArray[];
        return (bands ?? [0, 1, 2]).map((b) => rgb[b]);
      }
      const rasters = await this.image.readRasters({ window, samples: bands, interleave: false });
      return Array.from(rasters as unknown as BandArray[]);
    } catch (err) {
      if (err instanceof TubanError) throw err;
      throw this.undecodable(win, err);
    }
  }

  /** A window whose blocks would not decode: the file's bytes are damaged. */
  private undecodable(win: WindowPx, err: unknown): BadInputError {
    return new BadInputError(
      'corrupt_tiff',
      `${this.info.file}: cannot decode window x=${win.x} y=${win.y} ${win.width}×${win.height} (${(err as Error).message})`,
      { file: this.info.file, window: win },
      { cause: err },
    );
  }

  /** Pixel-interleaved 8-bit samples straight from the blocks, for the layouts the fast reader handles; else null. */
  async readInterleaved(win: WindowPx): Promise<{ data: Uint8Array; samples: number } | null> {
    checkWindow(this.info, win);
    if (!this.fast) return null;
    try {
      return { data: await this.fast.readInterleaved(win), samples: this.info.bandCount };
    } catch (err) {
      if (err instanceof TubanError) throw err;
      throw this.undecodable(win, err);
    }
  }

  async close(): Promise<void> {
    await this.tiff.close?.();
    await this.bytes.close();
  }
}

/** geotiff.js's source interface over a ByteSource: its header, IFD and block reads go the same way as ours. */
function geotiffSourceOf(bytes: ByteSource): Parameters<typeof GeoTIFF.fromSource>[0] {
  // a slice's bytes as an ArrayBuffer of their own (clipped at the end of the file, as geotiff.js expects)
  const read = async (s: { offset: number; length: number }): Promise<ArrayBuffer> => {
    const u = await bytes.read(s.offset, Math.max(0, Math.min(s.length, bytes.size - s.offset)));
    return (u.byteOffset === 0 && u.byteLength === u.buffer.byteLength ? u.buffer : u.slice().buffer) as ArrayBuffer;
  };
  return {
    fetch: (slices) => Promise.all(slices.map(read)),
    fetchSlice: async (slice) => ({ ...slice, data: await read(slice) }),
    get fileSize() {
      return bytes.size;
    },
    close: async () => {},
  };
}

/** TIFF compression codes geotiff.js decodes in Node (WebP needs a browser; LZMA and JPEG 2000 are not implemented). */
const DECODABLE: Record<number, string> = {
  1: 'none',
  5: 'LZW',
  7: 'JPEG',
  8: 'DEFLATE',
  32946: 'DEFLATE',
  32773: 'PackBits',
  34887: 'LERC',
  50000: 'ZSTD',
};
const KNOWN: Record<number, string> = {
  6: 'old-style JPEG',
  34712: 'JPEG 2000',
  34925: 'LZMA',
  50001: 'WebP',
  50002: 'JPEG XL',
  2: 'CCITT RLE',
  3: 'CCITT G3',
  4: 'CCITT G4',
};

function checkCompression(file: string, image: GeoTIFFImage): void {
  const code = new TiffTags(image).number('Compression', 1);
  if (DECODABLE[code]) return;
  throw new BadInputError(
    'unsupported_compression',
    `${file}: ${KNOWN[code] ?? 'unknown'} compression (TIFF code ${code}) is not supported; re-encode it, e.g. gdal_translate -co COMPRESS=DEFLATE -co PREDICTOR=2 -co TILED=YES`,
    { file, compression: code },
  );
}

/**
 * A truncated file still has a readable header, and geotiff.js then decodes the missing strips
 * as zeros — garbage pixels that look like change. Every strip/tile must end inside the file.
 */
async function checkDataWithinFile(
  file: string,
  image: GeoTIFFImage,
  size: number,
): Promise<{ offsets: ArrayLike<number>; counts: ArrayLike<number> }> {
  const tags = new TiffTags(image);
  const [offTag, cntTag] = tags.has('TileOffsets')
    ? ['TileOffsets', 'TileByteCounts']
    : ['StripOffsets', 'StripByteCounts'];
  if (!tags.has(offTag) || !tags.has(cntTag))
    throw new BadInputError(
      'corrupt_tiff',
      `${file}: no ${offTag}/${cntTag} tags, so the pixel data cannot be located`,
      { file },
    );
  const [offsets, counts] = await Promise.all([tags.load(offTag), tags.load(cntTag)]);
  let end = 0;
  for (let i = 0; i < offsets.length; i++) end = Math.max(end, Number(offsets[i]) + Number(counts[i]));
  if (end > size) {
    throw new BadInputError(
      'corrupt_tiff',
      `${file}: truncated — pixel data runs to byte ${end} but the file has ${size} bytes`,
      { file, expectedBytes: end, fileBytes: size },
    );
  }
  return { offsets, counts };
}

/** Header facts of a GeoTIFF image; throws BadInputError naming the file when georeferencing is missing or unusable. */
function rasterInfoOf(file: string, image: GeoTIFFImage): RasterInfo {
  const widthPx = image.getWidth();
  const heightPx = image.getHeight();
  const bandCount = image.getSamplesPerPixel();
  const sampleType = sampleTypeOf(file, image.getSampleFormat(0), image.getBitsPerSample(0));
  const geoKeys = image.getGeoKeys() as GeoKeys | null;
  const geoTransform = geoTransformOf(file, image, geoKeys);
  const crs = crsFromGeoKeys(geoKeys, file);
  const nodata = image.getGDALNoData();
  return { file, widthPx, heightPx, bandCount, sampleType, nodata: nodata ?? null, crs, geoTransform };
}

function sampleTypeOf(file: string, format: number, bits: number): SampleType {
  // TIFF SampleFormat: 1 unsigned int, 2 signed int, 3 IEEE float
  const key = `${format ?? 1}:${bits}`;
  const table: Record<string, SampleType> = {
    '1:8': 'uint8',
    '1:16': 'uint16',
    '2:16': 'int16',
    '1:32': 'uint32',
    '2:32': 'int32',
    '3:32': 'float32',
    '3:64': 'float64',
  };
  const t = table[key];
  if (!t)
    throw new BadInputError(
      'unsupported_sample_type',
      `${file}: sample format ${format} with ${bits} bits per sample is not supported`,
      { file, format, bits },
    );
  return t;
}

function geoTransformOf(file: string, image: GeoTIFFImage, geoKeys: GeoKeys | null): GeoTransform {
  const tags = new TiffTags(image);
  const transformation = tags.numbers('ModelTransformation');
  const tiepoint = tags.numbers('ModelTiepoint');
  const scale = tags.numbers('ModelPixelScale');
  let gt: [number, number, number, number, number, number];
  if (transformation && transformation.length >= 8) {
    gt = [
      transformation[3],
      transformation[0],
      transformation[1],
      transformation[7],
      transformation[4],
      transformation[5],
    ];
  } else if (tiepoint && tiepoint.length >= 6 && scale && scale.length >= 2) {
    const [i, j, , x, y] = tiepoint;
    gt = [x - i * scale[0], scale[0], 0, y + j * scale[1], 0, -scale[1]];
  } else {
    throw new BadInputError(
      'no_georeferencing',
      `${file}: no georeferencing (neither ModelTransformation nor ModelTiepoint + ModelPixelScale tags)`,
      { file },
    );
  }
  if (!gt.every(Number.isFinite) || gt[1] * gt[5] - gt[2] * gt[4] === 0) {
    throw new BadInputError('no_georeferencing', `${file}: degenerate geotransform [${gt.join(', ')}]`, { file });
  }
  if (geoKeys?.GTRasterTypeGeoKey === RASTER_PIXEL_IS_POINT) {
    // Like GDAL (GTIFF_POINT_GEO_IGNORE=FALSE): the tiepoint names a pixel centre; move the origin to the pixel's corner.
    gt = [gt[0] - 0.5 * gt[1] - 0.5 * gt[2], gt[1], gt[2], gt[3] - 0.5 * gt[4] - 0.5 * gt[5], gt[4], gt[5]];
  }
  return gt;
}

/**
 * Open GeoTIFFs by path, each opened once and shared (chips, map tiles, training chips read the
 * same tiles again and again). Beyond `max` files the oldest is dropped and closed a little later,
 * so a read still using it finishes first.
 */
export class GeoTiffCache {
  private readonly sources = new Map<string, Promise<GeoTiffSource>>();
  constructor(
    private readonly max = 64,
    private readonly closeDelayMs = 30_000,
  ) {}

  open(path: string): Promise<GeoTiffSource> {
    let s = this.sources.get(path);
    if (s) {
      this.sources.delete(path); // most recently used goes last, so eviction takes the least recently used
      this.sources.set(path, s);
    } else {
      if (this.sources.size >= this.max) {
        const [oldest, p] = this.sources.entries().next().value!;
        this.sources.delete(oldest);
        setTimeout(() => void p.then((x) => x.close()).catch(() => {}), this.closeDelayMs).unref();
      }
      s = GeoTiffSource.open(path);
      this.sources.set(path, s);
      s.catch(() => this.sources.delete(path));
    }
    return s;
  }

  async close(): Promise<void> {
    for (const p of this.sources.values()) await p.then((s) => s.close()).catch(() => {});
    this.sources.clear();
  }
}
