import sharp from 'sharp';
import { inflate } from 'node:zlib';
import type { GeoTIFFImage } from 'geotiff';
import type { WindowPx } from '../window.grid.ts';
import { lzwDecode } from './tiff.lzw.ts';
import { TiffTags } from './tiff.tags.ts';
import { arrayPool } from '../array.pool.ts';
import type { ByteSource } from './byte.source.ts';

/**
 * A direct reader for the most common delivery layout: 8-bit unsigned, pixel-interleaved
 * (PlanarConfiguration 1), uncompressed, DEFLATE or LZW, with or without horizontal differencing
 * (Predictor 2), tiled or striped. Blocks are read with positional reads (or, remote, ranged
 * requests for runs of neighbouring blocks: ByteSource.prefetch), many at a time,
 * inflated by Node's zlib on libuv's thread pool (LZW by tiff.lzw.ts), and handed over as stored
 * (readInterleaved) or de-interleaved in one pass (read): several times faster than geotiff.js,
 * which decodes in JavaScript and copies sample by sample. Anything else goes through geotiff.js.
 */
export class FastTiffReader {
  private constructor(
    private readonly bytes: ByteSource,
    private readonly width: number,
    private readonly height: number,
    private readonly spp: number,
    private readonly blockW: number,
    private readonly blockH: number,
    private readonly compression: 'none' | 'deflate' | 'lzw',
    private readonly predictor: boolean,
    private readonly offsets: ArrayLike<number>,
    private readonly counts: ArrayLike<number>,
    private readonly photometric: number,
  ) {}

  /** A reader when the image's layout is one this handles, else null. `blocks`: its strip or tile offsets and byte counts. */
  static forImage(
    bytes: ByteSource,
    image: GeoTIFFImage,
    blocks: { offsets: ArrayLike<number>; counts: ArrayLike<number> },
  ): FastTiffReader | null {
    const tags = new TiffTags(image);
    const spp = image.getSamplesPerPixel();
    const bits = tags.numbers('BitsPerSample') ?? [1];
    for (let i = 0; i < spp; i++) if (Number(bits[i] ?? bits[0]) !== 8) return null;
    const formats = tags.numbers('SampleFormat') ?? [1];
    for (let i = 0; i < spp; i++) if (Number(formats[i] ?? formats[0]) !== 1) return null;
    if (tags.number('PlanarConfiguration', 1) !== 1) return null;
    if (tags.number('PhotometricInterpretation', 1) === 6) return null; // YCbCr
    if (tags.number('FillOrder', 1) !== 1) return null;
    const compression = tags.number('Compression', 1);
    const kind =
      compression === 1
        ? 'none'
        : compression === 8 || compression === 32946
          ? 'deflate'
          : compression === 5
            ? 'lzw'
            : null;
    if (!kind) return null;
    const predictor = tags.number('Predictor', 1);
    if (predictor !== 1 && predictor !== 2) return null;
    const tiled = tags.has('TileOffsets');
    const width = image.getWidth(),
      height = image.getHeight();
    const blockW = tiled ? tags.number('TileWidth', 0) : width;
    const blockH = tiled ? tags.number('TileLength', 0) : Math.min(tags.number('RowsPerStrip', height), height);
    if (blockW <= 0 || blockH <= 0) return null;
    return new FastTiffReader(
      bytes,
      width,
      height,
      spp,
      blockW,
      blockH,
      kind,
      predictor === 2,
      blocks.offsets,
      blocks.counts,
      tags.number('PhotometricInterpretation', 1),
    );
  }

  /**
   * Compressed tiles are read through libvips (sharp): libtiff with zlib-ng decodes them in C on
   * every core, with none of the per-block work on Node's main thread, where a part job's reads
   * otherwise compete with everything else the process does (in the batch benchmark this took a
   * DEFLATE scene's reads from 2.8 to 1.9 s). Strips stay with eachRun: libvips may decode a
   * striped file from its first strip on. Only RGB(A) goes that way: libvips turns one grey band
   * into three, drops or premultiplies alpha beside grey, expands palettes and inverts
   * MINISWHITE, none of which is the stored value GDAL gives; those are decoded by eachRun.
   * read() and readInterleaved() decode the same way; the tests compare both with GDAL for tiled
   * and striped files of every such layout. libvips reads local files only.
   */
  private get viaLibvips(): boolean {
    return (
      this.bytes.localPath !== null &&
      this.compression !== 'none' &&
      this.blockW !== this.width &&
      this.photometric === 2 &&
      (this.spp === 3 || this.spp === 4)
    );
  }

  /** Band-separate samples of a window (bands: 0-based sample indices). */
  async read(win: WindowPx, bands: number[]): Promise<Uint8Array[]> {
    const out = bands.map(() => new Uint8Array(win.width * win.height));
    const spp = this.spp;
    const rgb = bands.length === 3 && spp >= 3 && bands[0] === 0 && bands[1] === 1 && bands[2] === 2;
    const split = (block: Uint8Array, src: number, dst: number, n: number) => {
      if (rgb) deinterleave3(block, src, spp, out[0], out[1], out[2], dst, n);
      else for (let k = 0; k < bands.length; k++) deinterleave1(block, src + bands[k], spp, out[k], dst, n);
    };
    if (this.viaLibvips) split(await readWithLibvips(this.bytes.localPath!, win, spp), 0, 0, win.width * win.height);
    else await this.eachRun(win, split);
    return out;
  }

  /**
   * All samples of a window, pixel-interleaved as stored: rows of width × samples bytes, copied
   * block by block (or decoded by libvips, viaLibvips). The array may come from arrayPool; its last
   * holder may give it back.
   */
  async readInterleaved(win: WindowPx): Promise<Uint8Array> {
    const spp = this.spp;
    if (this.viaLibvips) return readWithLibvips(this.bytes.localPath!, win, spp);
    const out = arrayPool.take(Uint8Array, win.width * win.height * spp);
    await this.eachRun(win, (block, src, dst, n) => out.set(block.subarray(src, src + n * spp), dst * spp));
    return out;
  }

  /**
   * Visits the window block by block: for each row of each block, the decoded block, the offset of
   * the row's first window pixel in it (in samples), that pixel's index in the window, and how many
   * pixels of the row lie in the window. Blocks are read and inflated a group at a time (a row of
   * tiles, or enough strips to make BLOCKS_IN_FLIGHT): the reads and zlib's inflation run on
   * libuv's thread pool side by side, so decoding uses every core; each block's raw bytes go into
   * its slot of one buffer that this call reuses from group to group.
   */
  private async eachRun(
    win: WindowPx,
    visit: (block: Uint8Array, src: number, dst: number, n: number) => void,
  ): Promise<void> {
    const perRow = Math.ceil(this.width / this.blockW);
    const bx0 = Math.floor(win.x / this.blockW),
      bx1 = Math.floor((win.x + win.width - 1) / this.blockW);
    const by0 = Math.floor(win.y / this.blockH),
      by1 = Math.floor((win.y + win.height - 1) / this.blockH);
    const stride = this.blockW * this.spp;
    const across = bx1 - bx0 + 1;
    const rowsAtOnce = Math.max(1, Math.floor(BLOCKS_IN_FLIGHT / across));
    const rowsOf = (by: number) =>
      this.blockW === this.width ? Math.min(this.blockH, this.height - by * this.blockH) : this.blockH; // a last strip may be short; tiles are padded
    const scratch: Uint8Array[] = [];
    for (let g0 = by0; g0 <= by1; g0 += rowsAtOnce) {
      const g1 = Math.min(by1, g0 + rowsAtOnce - 1);
      const pending: Promise<Uint8Array>[] = [];
      const wanted: { offset: number; length: number }[] = [];
      for (let by = g0; by <= g1; by++)
        for (let i = 0; i < across; i++) {
          const b = by * perRow + bx0 + i;
          wanted.push({ offset: Number(this.offsets[b]), length: Number(this.counts[b]) });
        }
      await this.bytes.prefetch(wanted);
      for (let by = g0; by <= g1; by++)
        for (let i = 0; i < across; i++)
          pending.push(this.block(by * perRow + bx0 + i, rowsOf(by), scratch, pending.length));
      const blocks = await Promise.all(pending);
      for (let by = g0; by <= g1; by++) {
        const rows = rowsOf(by);
        for (let bx = bx0; bx <= bx1; bx++) {
          const block = blocks[(by - g0) * across + bx - bx0];
          const x0 = Math.max(win.x, bx * this.blockW),
            x1 = Math.min(win.x + win.width, (bx + 1) * this.blockW, this.width);
          const y0 = Math.max(win.y, by * this.blockH),
            y1 = Math.min(win.y + win.height, by * this.blockH + rows);
          for (let y = y0; y < y1; y++)
            visit(
              block,
              (y - by * this.blockH) * stride + (x0 - bx * this.blockW) * this.spp,
              (y - win.y) * win.width + (x0 - win.x),
              x1 - x0,
            );
        }
      }
    }
    // (not when a read failed: its sibling reads may still be filling their slots)
    arrayPool.give(...scratch);
  }

  /** One block, decoded; its raw bytes are read into scratch[slot] (grown when too small; from arrayPool), which the caller reuses. */
  private async block(index: number, rows: number, scratch: Uint8Array[], slot: number): Promise<Uint8Array> {
    const offset = Number(this.offsets[index]),
      count = Number(this.counts[index]);
    const size = this.blockW * rows * this.spp;
    if (count === 0) return new Uint8Array(size); // sparse block: GDAL reads it as 0
    if (!scratch[slot] || scratch[slot].length < count) {
      arrayPool.give(scratch[slot]);
      scratch[slot] = arrayPool.take(Uint8Array, Math.ceil(count / size) * size); // whole block sizes, so slots are reused across blocks and parts
    }
    const raw = scratch[slot].subarray(0, count);
    const got = await this.bytes.read(offset, count, raw);
    if (got.length !== count) throw new Error(`block ${index} ends past the end of the file`);
    // a block never holds more than its declared width × height (the last strip may be stored full height)
    const declared = this.blockW * this.blockH * this.spp;
    const data =
      this.compression === 'deflate'
        ? await inflateBlock(raw, size, declared).catch((err: Error & { code?: string }) => {
            throw err.code === 'ERR_BUFFER_TOO_LARGE'
              ? new Error(
                  `block ${index} inflates past the ${declared} bytes its ${this.blockW}×${this.blockH} px of ${this.spp} byte(s) declare (a decompression bomb, or damaged)`,
                )
              : err;
          })
        : this.compression === 'lzw'
          ? lzwDecode(raw, size)
          : raw;
    if (data.length < size) throw new Error(`block ${index} holds ${data.length} bytes, expected ${size}`);
    const block = new Uint8Array(data.buffer, data.byteOffset, size);
    if (this.predictor) undoPredictor(block, rows, this.blockW * this.spp, this.spp);
    return block;
  }
}

/**
 * A window of a tiled 8-bit TIFF, all samples pixel-interleaved, decoded by libvips. It refuses on
 * any warning (sharp's default failOn), so a damaged block is an error, never zeros.
 */
async function readWithLibvips(file: string, win: WindowPx, spp: number): Promise<Uint8Array> {
  const { data, info } = await sharp(file, { limitInputPixels: false })
    .extract({ left: win.x, top: win.y, width: win.width, height: win.height })
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== spp || data.length !== win.width * win.height * spp)
    throw new Error(
      `libvips gave ${info.channels} band(s) and ${data.length} bytes for a ${win.width}×${win.height} window of ${spp} band(s)`,
    );
  return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

/** Blocks read and decoded at once: enough to keep libuv's thread pool (4 threads by default) busy. */
const BLOCKS_IN_FLIGHT = 16;

/**
 * A zlib (DEFLATE) block inflated on libuv's thread pool, into one buffer of the block's size (a
 * smaller chunk size would make zlib deliver pieces and Node join them, a copy of every byte), and
 * never past `maxBytes`: zlib stops there (ERR_BUFFER_TOO_LARGE) instead of inflating a strip of a few
 * kilobytes to gigabytes of zeros. `raw` must stay untouched until the promise settles.
 */
function inflateBlock(raw: Uint8Array, size: number, maxBytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    inflate(raw, { chunkSize: Math.max(size, 64), maxOutputLength: Math.max(maxBytes, size, 1) }, (err, out) =>
      err ? reject(err) : resolve(out),
    ),
  );
}

/**
 * Undoes horizontal differencing (TIFF 6.0 §14) in place, per row and sample: each sample is the
 * running sum, modulo 256, of the differences before it.
 */
function undoPredictor(block: Uint8Array, rows: number, stride: number, spp: number): void {
  for (let r = 0; r < rows; r++) {
    const end = (r + 1) * stride;
    if (spp === 3) {
      let a = block[r * stride],
        b = block[r * stride + 1],
        c = block[r * stride + 2];
      for (let i = r * stride + 3; i < end; i += 3) {
        a = (a + block[i]) & 0xff;
        b = (b + block[i + 1]) & 0xff;
        c = (c + block[i + 2]) & 0xff;
        block[i] = a;
        block[i + 1] = b;
        block[i + 2] = c;
      }
    } else {
      for (let i = r * stride + spp; i < end; i++) block[i] = block[i] + block[i - spp];
    }
  }
}

/** Samples 0, 1 and 2 of n pixels of `spp` interleaved samples, from block[src] into three planes at dst, in one pass. */
function deinterleave3(
  block: Uint8Array,
  src: number,
  spp: number,
  o0: Uint8Array,
  o1: Uint8Array,
  o2: Uint8Array,
  dst: number,
  n: number,
): void {
  for (let x = 0, s = src; x < n; x++, s += spp) {
    o0[dst + x] = block[s];
    o1[dst + x] = block[s + 1];
    o2[dst + x] = block[s + 2];
  }
}

function deinterleave1(block: Uint8Array, src: number, spp: number, o: Uint8Array, dst: number, n: number): void {
  for (let x = 0, s = src; x < n; x++, s += spp) o[dst + x] = block[s];
}
