import { open } from 'node:fs/promises';
import { BadInputError } from './errors.ts';

/** Largest side accepted, in pixels: 1,000,000 px is 500 km at 0.5 m, far beyond any city scene. */
export const MAX_SIDE_PX = 1_000_000;
/** More IFDs than this (images, overviews, masks) is treated as a corrupt chain. */
const MAX_IFDS = 256;

/**
 * Walks a TIFF's IFD chain before any decoder touches it: refuses wrong magic numbers, IFD
 * offsets outside the file, chains that loop back on themselves (which would make a naive
 * reader spin forever) and absurd image sizes (which would make it allocate gigabytes).
 * Reads only the header and the IFD entries, never pixel data.
 */
export async function checkTiffStructure(file: string): Promise<{ ifds: number; bigTiff: boolean }> {
  const fh = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new BadInputError('file_missing', `${file}: no such file`, { file });
    throw new BadInputError('unreadable', `${file}: cannot open (${err.message})`, { file });
  });
  try {
    const size = (await fh.stat()).size;
    const read = async (offset: number, length: number): Promise<Buffer> => {
      if (offset < 0 || offset + length > size) throw new BadInputError('corrupt_tiff', `${file}: structure points at bytes ${offset}–${offset + length}, past the end of the file (${size} bytes)`, { file });
      const buf = Buffer.alloc(length);
      await fh.read(buf, 0, length, offset);
      return buf;
    };
    if (size < 8) throw new BadInputError('corrupt_tiff', `${file}: ${size} bytes is too short for a TIFF header`, { file });
    const head = await read(0, 16 <= size ? 16 : 8);
    const order = head.toString('latin1', 0, 2);
    if (order !== 'II' && order !== 'MM') throw new BadInputError('corrupt_tiff', `${file}: not a TIFF (byte-order mark ${JSON.stringify(order)}, expected "II" or "MM")`, { file });
    const le = order === 'II';
    const u16 = (b: Buffer, o: number) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o));
    const u32 = (b: Buffer, o: number) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
    const u64 = (b: Buffer, o: number) => Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o));
    const magic = u16(head, 2);
    if (magic !== 42 && magic !== 43) throw new BadInputError('corrupt_tiff', `${file}: TIFF magic number ${magic}, expected 42 (TIFF) or 43 (BigTIFF)`, { file });
    const big = magic === 43;
    let offset = big ? u64(head, 8) : u32(head, 4);
    const seen = new Set<number>();
    let count = 0;
    while (offset !== 0) {
      if (seen.has(offset)) throw new BadInputError('corrupt_tiff', `${file}: IFD chain loops back to offset ${offset}`, { file });
      if (++count > MAX_IFDS) throw new BadInputError('corrupt_tiff', `${file}: more than ${MAX_IFDS} IFDs`, { file });
      seen.add(offset);
      const n = big ? u64(await read(offset, 8), 0) : u16(await read(offset, 2), 0);
      const entrySize = big ? 20 : 12;
      const first = offset + (big ? 8 : 2);
      if (n > 4096) throw new BadInputError('corrupt_tiff', `${file}: IFD at ${offset} claims ${n} entries`, { file });
      const entries = await read(first, n * entrySize + (big ? 8 : 4));
      if (count === 1) {
        for (let i = 0; i < n; i++) {
          const e = i * entrySize;
          const tag = u16(entries, e);
          if (tag !== 256 && tag !== 257) continue; // ImageWidth, ImageLength
          const type = u16(entries, e + 2);
          const valueAt = e + (big ? 12 : 8);
          const v = type === 3 ? u16(entries, valueAt) : type === 16 ? u64(entries, valueAt) : u32(entries, valueAt);
          if (v === 0 || v > MAX_SIDE_PX) throw new BadInputError('absurd_size', `${file}: image ${tag === 256 ? 'width' : 'height'} ${v} px is outside 1…${MAX_SIDE_PX} px`, { file });
        }
      }
      const nextAt = n * entrySize;
      offset = big ? u64(entries, nextAt) : u32(entries, nextAt);
    }
    if (count === 0) throw new BadInputError('corrupt_tiff', `${file}: no image directory`, { file });
    return { ifds: count, bigTiff: big };
  } finally {
    await fh.close();
  }
}
