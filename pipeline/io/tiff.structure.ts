import { BadInputError } from '../../core/errors.ts';
import type { ByteSource } from './byte.source.ts';

/** Largest side accepted, in pixels: 1,000,000 px is 500 km at 0.5 m, far beyond any city scene. */
const MAX_SIDE_PX = 1_000_000;
/** Largest image accepted by default, in pixels (TUBAN_MAX_IMAGE_MPX): a whole city's month in one file is 6.8 Gpx. */
const DEFAULT_MAX_PIXELS = 10_000 * 1e6;
/** More IFDs than this (images, overviews, masks) is treated as a corrupt chain. */
const MAX_IFDS = 256;

/**
 * Walks a TIFF's IFD chain before any decoder touches it: refuses wrong magic numbers, IFD
 * offsets outside the file, chains that loop back on themselves (which would make a naive
 * reader spin forever), absurd image sizes (which would make it allocate gigabytes), sizes over
 * `maxPixels`, and a first image whose strips or tiles are not all listed or do not all lie
 * inside the file (a header that declares more than the file can back). Reads only the header,
 * the IFD entries and the block offset tables, never pixel data.
 */
export async function checkTiffStructure(
  src: ByteSource,
  maxPixels = DEFAULT_MAX_PIXELS,
): Promise<{ ifds: number; bigTiff: boolean }> {
  const file = src.location;
  const size = src.size;
  const read = async (offset: number, length: number): Promise<Buffer> => {
    if (offset < 0 || offset + length > size)
      throw new BadInputError(
        'corrupt_tiff',
        `${file}: structure points at bytes ${offset}–${offset + length}, past the end of the file (${size} bytes)`,
        { file },
      );
    const bytes = await src.read(offset, length);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  };
  if (size < 8)
    throw new BadInputError('corrupt_tiff', `${file}: ${size} bytes is too short for a TIFF header`, { file });
  const head = await read(0, 16 <= size ? 16 : 8);
  const order = head.toString('latin1', 0, 2);
  if (order !== 'II' && order !== 'MM')
    throw new BadInputError(
      'corrupt_tiff',
      `${file}: not a TIFF (byte-order mark ${JSON.stringify(order)}, expected "II" or "MM")`,
      { file },
    );
  const le = order === 'II';
  const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
  const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
  const magic = u16(head, 2);
  if (magic !== 42 && magic !== 43)
    throw new BadInputError('corrupt_tiff', `${file}: TIFF magic number ${magic}, expected 42 (TIFF) or 43 (BigTIFF)`, {
      file,
    });
  const big = magic === 43;
  let offset = big ? u64(head, 8) : u32(head, 4);
  const seen = new Set<number>();
  let count = 0;
  while (offset !== 0) {
    if (seen.has(offset))
      throw new BadInputError('corrupt_tiff', `${file}: IFD chain loops back to offset ${offset}`, { file });
    if (++count > MAX_IFDS) throw new BadInputError('corrupt_tiff', `${file}: more than ${MAX_IFDS} IFDs`, { file });
    seen.add(offset);
    const n = big ? u64(await read(offset, 8), 0) : u16(await read(offset, 2), 0);
    const entrySize = big ? 20 : 12;
    const first = offset + (big ? 8 : 2);
    if (n > 4096) throw new BadInputError('corrupt_tiff', `${file}: IFD at ${offset} claims ${n} entries`, { file });
    const entries = await read(first, n * entrySize + (big ? 8 : 4));
    if (count === 1) {
      const tags = new Map<number, { type: number; n: number; at: number }>();
      for (let i = 0; i < n; i++) {
        const e = i * entrySize;
        tags.set(u16(entries, e), {
          type: u16(entries, e + 2),
          n: big ? u64(entries, e + 4) : u32(entries, e + 4),
          at: e + (big ? 12 : 8),
        });
      }
      const TYPE_BYTES: Record<number, number> = { 3: 2, 4: 4, 16: 8 };
      /** An integer tag's values (SHORT, LONG, LONG8), inline or at their offset; refused when they cannot lie in the file. */
      const values = async (tag: number, name: string): Promise<number[] | null> => {
        const t = tags.get(tag);
        if (!t) return null;
        const width = TYPE_BYTES[t.type];
        if (!width)
          throw new BadInputError('corrupt_tiff', `${file}: ${name} has TIFF type ${t.type}, not an integer type`, {
            file,
          });
        if (t.n * width > size)
          throw new BadInputError(
            'corrupt_tiff',
            `${file}: ${name} claims ${t.n} values, more than the file (${size} bytes) can hold`,
            { file },
          );
        const inline = t.n * width <= (big ? 8 : 4);
        const buf = inline
          ? entries.subarray(t.at, t.at + t.n * width)
          : await read(big ? u64(entries, t.at) : u32(entries, t.at), t.n * width);
        const get = width === 2 ? u16 : width === 4 ? u32 : u64;
        return Array.from({ length: t.n }, (_, k) => get(buf, k * width));
      };
      const [width, height] = [
        (await values(256, 'ImageWidth'))?.[0] ?? 0,
        (await values(257, 'ImageLength'))?.[0] ?? 0,
      ];
      for (const [v, what] of [
        [width, 'width'],
        [height, 'height'],
      ] as const) {
        if (v === 0 || v > MAX_SIDE_PX)
          throw new BadInputError('absurd_size', `${file}: image ${what} ${v} px is outside 1…${MAX_SIDE_PX} px`, {
            file,
          });
      }
      if (width * height > maxPixels)
        throw new BadInputError(
          'too_large',
          `${file}: ${width}×${height} px (${((width * height) / 1e6).toFixed(0)} Mpx) is over the ${(maxPixels / 1e6).toFixed(0)} Mpx ceiling (TUBAN_MAX_IMAGE_MPX); cut it into tiles (gdal_retile.py) or raise the ceiling`,
          { file },
        );
      // every block the size implies must be listed, and every listed block must lie inside the file
      const planes =
        (await values(284, 'PlanarConfiguration'))?.[0] === 2 ? ((await values(277, 'SamplesPerPixel'))?.[0] ?? 1) : 1;
      const tiled = tags.has(324) || tags.has(322);
      const blockW = tiled ? ((await values(322, 'TileWidth'))?.[0] ?? 0) : width;
      const blockH = tiled
        ? ((await values(323, 'TileLength'))?.[0] ?? 0)
        : Math.min(height, (await values(278, 'RowsPerStrip'))?.[0] || height);
      if (blockW === 0 || blockH === 0)
        throw new BadInputError('corrupt_tiff', `${file}: ${tiled ? 'tile' : 'strip'} size ${blockW}×${blockH} px`, {
          file,
        });
      const expected = Math.ceil(width / blockW) * Math.ceil(height / blockH) * planes;
      const offsets = await values(tiled ? 324 : 273, tiled ? 'TileOffsets' : 'StripOffsets');
      const counts = await values(tiled ? 325 : 279, tiled ? 'TileByteCounts' : 'StripByteCounts');
      if (!offsets || !counts)
        throw new BadInputError('corrupt_tiff', `${file}: no ${tiled ? 'tile' : 'strip'} offsets or byte counts`, {
          file,
        });
      if (offsets.length !== expected || counts.length !== expected) {
        throw new BadInputError(
          'corrupt_tiff',
          `${file}: a ${width}×${height} px image in ${blockW}×${blockH} px ${tiled ? 'tiles' : 'strips'} needs ${expected} of them; the file lists ${offsets.length} offsets and ${counts.length} byte counts`,
          { file },
        );
      }
      for (let k = 0; k < expected; k++) {
        if (counts[k] > 0 && offsets[k] + counts[k] > size) {
          throw new BadInputError(
            'corrupt_tiff',
            `${file}: ${tiled ? 'tile' : 'strip'} ${k} lies at bytes ${offsets[k]}–${offsets[k] + counts[k]}, past the end of the file (${size} bytes)`,
            { file },
          );
        }
      }
    }
    const nextAt = n * entrySize;
    offset = big ? u64(entries, nextAt) : u32(entries, nextAt);
  }
  if (count === 0) throw new BadInputError('corrupt_tiff', `${file}: no image directory`, { file });
  return { ifds: count, bigTiff: big };
}
