/**
 * Decompression bombs for the hostile-input tests (issue 29): a zlib stream of a gigabyte of zeros
 * (about 1 MB), a GeoTIFF whose one strip is that stream, and a PNG whose iCCP profile is.
 */
import { once } from 'node:events';
import { createDeflate } from 'node:zlib';
import sharp from 'sharp';
import { EPSG_4548 } from '../../core/crs.ts';
import { encodeGeoTiff } from '../../pipeline/io/geotiff.write.ts';

const cache = new Map<number, Promise<Buffer>>();

/** zlib of `bytes` zero bytes, deflated a piece at a time (the zeros are never all in memory). */
export function deflatedZeros(bytes: number): Promise<Buffer> {
  let p = cache.get(bytes);
  if (!p) {
    p = (async () => {
      const z = createDeflate({ level: 9 });
      const out: Buffer[] = [];
      z.on('data', (d: Buffer) => out.push(d));
      const piece = Buffer.alloc(Math.min(bytes, 64 << 20));
      for (let left = bytes; left > 0; left -= piece.length)
        if (!z.write(left >= piece.length ? piece : piece.subarray(0, left))) await once(z, 'drain');
      z.end();
      await once(z, 'end');
      return Buffer.concat(out);
    })();
    cache.set(bytes, p);
  }
  return p;
}

/**
 * A georeferenced GeoTIFF (EPSG:4548, 0.5 m) of widthPx × rows px, one strip, whose strip is `payload`
 * marked DEFLATE: encodeGeoTiff's uncompressed file with its Compression, StripOffsets and
 * StripByteCounts entries pointed at the payload appended to it.
 */
export function deflateStripTiff(widthPx: number, rows: number, samples: 'rgb8' | 'grey16', payload: Buffer): Buffer {
  const bands = samples === 'rgb8' ? 3 : 1;
  const data = samples === 'rgb8' ? new Uint8Array(widthPx * rows * 3) : new Uint16Array(widthPx * rows);
  const base = Buffer.from(
    encodeGeoTiff({
      widthPx,
      heightPx: rows,
      samples: data,
      bands,
      crs: EPSG_4548,
      geoTransform: [611200, 0.5, 0, 2713600, 0, -0.5],
    }),
  );
  const file = Buffer.concat([base, payload]);
  const ifd = file.readUInt32LE(4);
  const n = file.readUInt16LE(ifd);
  for (let k = 0; k < n; k++) {
    const e = ifd + 2 + 12 * k;
    const tag = file.readUInt16LE(e);
    if (tag === 259) file.writeUInt16LE(8, e + 8);
    if (tag === 273) file.writeUInt32LE(base.length, e + 8);
    if (tag === 279) file.writeUInt32LE(payload.length, e + 8);
  }
  return file;
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A small real PNG with an iCCP chunk right after IHDR whose compressed profile is `profile`. */
export async function pngWithIcc(profile: Buffer): Promise<Buffer> {
  const png = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#7a9' } })
    .png()
    .toBuffer();
  const ihdrEnd = 8 + 12 + png.readUInt32BE(8);
  const body = Buffer.concat([Buffer.from('iCCP'), Buffer.from('bomb\0\0', 'latin1'), profile]);
  const chunk = Buffer.alloc(12 + body.length - 4);
  chunk.writeUInt32BE(body.length - 4, 0);
  body.copy(chunk, 4);
  chunk.writeUInt32BE(crc32(body), 8 + body.length - 4);
  return Buffer.concat([png.subarray(0, ihdrEnd), chunk, png.subarray(ihdrEnd)]);
}
