import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';

/** GeoTIFFs written by GDAL that tuban must refuse, with the file and the reason named. */
describe('refusing GeoTIFFs it cannot read', () => {
  const fixturesDir = inject('fixturesDir');
  const dir = mkdtempSync(join(tmpdir(), 'tuban-gdal-refuse-'));
  const make = (name: string, args: string[]) => {
    const out = join(dir, `${name}.tif`);
    execFileSync('gdal_translate', ['-q', ...args, join(fixturesDir, 'imagery', '2024-03', 'r0c0.tif'), out]);
    return out;
  };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a tile whose compressed bytes are damaged, naming the file, in either reader', async () => {
    for (const c of ['DEFLATE', 'LZW']) {
      const f = make(`damaged-${c}`, ['-co', 'TILED=YES', '-co', `COMPRESS=${c}`, '-co', 'PREDICTOR=2']);
      const bytes = readFileSync(f);
      bytes.fill(0xff, bytes.length >> 1, (bytes.length >> 1) + 4000); // inside some tile's data; the structure stays intact
      writeFileSync(f, bytes);
      const src = await GeoTiffSource.open(f);
      try {
        const whole = { x: 0, y: 0, width: src.info.widthPx, height: src.info.heightPx };
        await expect(src.readInterleaved(whole), `${c} pixel-interleaved`).rejects.toMatchObject({
          code: 'corrupt_tiff',
          message: expect.stringContaining(f),
        });
        await expect(src.readWindow(whole), `${c} band by band`).rejects.toMatchObject({
          code: 'corrupt_tiff',
          message: expect.stringContaining(f),
        });
      } finally {
        await src.close();
      }
    }
  });

  it('refuses compressions it cannot decode, naming the file and the compression', async () => {
    for (const [c, label] of [
      ['LZMA', 'LZMA'],
      ['WEBP', 'WebP'],
    ]) {
      const f = make(`c-${c}`, ['-co', `COMPRESS=${c}`]);
      await expect(GeoTiffSource.open(f)).rejects.toMatchObject({
        code: 'unsupported_compression',
        message: expect.stringContaining(`${f}: ${label} compression`),
      });
    }
  });
});
