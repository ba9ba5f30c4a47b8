/**
 * Decompression with a bound, for the layouts geotiff.js decodes (16-bit, float, band-separate, …):
 * its own DEFLATE (pako) and LZW decoders grow their output as long as the stream goes, so a strip of
 * a few kilobytes that inflates to gigabytes of zeros (issue 29: a 2.4 MB file took registration to
 * 8.3 GB) would be decoded whole. These decoders stop at the bytes the block declares — its width ×
 * height × bytes per pixel — and refuse the rest: the read fails as corrupt_tiff (geotiff.source.ts).
 * ZSTD is streamed a piece at a time and stopped the same way. Registered once, when this module loads.
 */
import { inflateSync } from 'node:zlib';
import { addDecoder, BaseDecoder } from 'geotiff';
import { ZSTDDecoder } from 'zstddec/stream';
import { lzwDecode } from './tiff.lzw.ts';

interface Params {
  tileWidth: number;
  tileHeight: number;
  /** Rows a block can hold: a strip's RowsPerStrip may say more than the image has (2³² − 1 means one strip). */
  blockRows: number;
  bitsPerSample: number | ArrayLike<number>;
  planarConfiguration: number;
  samplesPerPixel?: number;
  predictor: number;
}

/** The most bytes one block may decode to: a full block of the declared size (band-separate: one sample a pixel). */
function declaredBlockBytes(p: Params): number {
  const bits = typeof p.bitsPerSample === 'number' ? [p.bitsPerSample] : Array.from(p.bitsPerSample);
  const perPixel = p.planarConfiguration === 2 ? bits[0] : bits.reduce((a, b) => a + b, 0);
  return Math.ceil((p.tileWidth * perPixel) / 8) * p.blockRows;
}

const bomb = (kind: string, max: number) =>
  new Error(`a ${kind} block decodes past the ${max} bytes it declares (a decompression bomb, or damaged)`);

class BoundedDeflate extends BaseDecoder {
  override decodeBlock(buffer: ArrayBuffer): ArrayBuffer {
    const max = declaredBlockBytes(this.parameters as unknown as Params);
    try {
      const out = inflateSync(new Uint8Array(buffer), { maxOutputLength: Math.max(max, 1) });
      return out.buffer.slice(out.byteOffset, out.byteOffset + out.length) as ArrayBuffer;
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw bomb('DEFLATE', max);
      throw err;
    }
  }
}

class BoundedLzw extends BaseDecoder {
  override decodeBlock(buffer: ArrayBuffer): ArrayBuffer {
    // tuban's decoder writes into a buffer of the declared size and stops there
    return lzwDecode(new Uint8Array(buffer), declaredBlockBytes(this.parameters as unknown as Params))
      .buffer as ArrayBuffer;
  }
}

class BoundedPackbits extends BaseDecoder {
  override decodeBlock(buffer: ArrayBuffer): ArrayBuffer {
    const max = declaredBlockBytes(this.parameters as unknown as Params);
    const input = new Int8Array(buffer);
    const out = new Uint8Array(max);
    let o = 0;
    for (let i = 0; i < input.length && o < max;) {
      const n = input[i++];
      if (n >= 0) {
        const len = Math.min(n + 1, max - o, input.length - i);
        out.set(new Uint8Array(buffer, i, len), o);
        o += len;
        i += n + 1;
      } else if (n !== -128) {
        const v = input[i++] & 0xff;
        const len = Math.min(1 - n, max - o);
        out.fill(v, o, o + len);
        o += len;
      }
    }
    return out.buffer.slice(0, o);
  }
}

/** One ZSTD decoder (WebAssembly) for the process, started the first time a ZSTD block comes. */
let zstd: Promise<ZSTDDecoder> | null = null;

class BoundedZstd extends BaseDecoder {
  override async decodeBlock(buffer: ArrayBuffer): Promise<ArrayBuffer> {
    const max = declaredBlockBytes(this.parameters as unknown as Params);
    zstd ??= (async () => {
      const d = new ZSTDDecoder();
      await d.init();
      return d;
    })();
    const decoder = await zstd;
    // streamed a piece at a time (GDAL's frames do not declare their size), and stopped past the bound
    const parts: Uint8Array[] = [];
    let total = 0;
    for (const part of decoder.decodeStreaming([new Uint8Array(buffer)])) {
      total += part.length;
      if (total > max) throw bomb('ZSTD', max);
      parts.push(part);
    }
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    return out.buffer;
  }
}

/** What every bounded decoder needs besides geotiff.js's defaults: the samples per pixel. */
async function parameters(dir: {
  hasTag(t: string): boolean;
  loadValue(t: string): Promise<unknown>;
}): Promise<Params> {
  const tiled = !dir.hasTag('StripOffsets');
  const imageRows = Number(await dir.loadValue('ImageLength'));
  // tileHeight as geotiff.js gives it (its predictor runs on it); the bound on the rows a block can hold
  const tileHeight = Number(
    tiled ? await dir.loadValue('TileLength') : (await dir.loadValue('RowsPerStrip')) || imageRows,
  );
  return {
    tileWidth: Number(await dir.loadValue(tiled ? 'TileWidth' : 'ImageWidth')),
    tileHeight,
    blockRows: tiled ? tileHeight : Math.min(tileHeight, imageRows),
    planarConfiguration: Number(await dir.loadValue('PlanarConfiguration')) || 1,
    bitsPerSample: (await dir.loadValue('BitsPerSample')) as number | number[],
    samplesPerPixel: Number(await dir.loadValue('SamplesPerPixel')) || 1,
    predictor: Number(await dir.loadValue('Predictor')) || 1,
  };
}

addDecoder([8, 32946], async () => BoundedDeflate as never, parameters as never, false);
addDecoder(5, async () => BoundedLzw as never, parameters as never, false);
addDecoder(32773, async () => BoundedPackbits as never, parameters as never, false);
addDecoder(50000, async () => BoundedZstd as never, parameters as never, false);
