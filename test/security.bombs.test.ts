import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { exifBlock } from '../export/exif.ts';

import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { deflatedZeros, deflateStripTiff, pngWithIcc } from './helpers/bombs.ts';
import { hostileServer } from './helpers/hostile.ts';

const GIB = 2 ** 30;

/**
 * The two High findings of issue 29, replayed: a GeoTIFF whose one DEFLATE strip of a few kilobytes
 * inflates to a gigabyte of zeros, and a PNG whose iCCP profile does. Both used to be decompressed
 * whole (registration peaked at 8.3 GB and accepted the file; three PNG uploads stalled /api/health for
 * 7 s); both are now refused or skipped at the bound their file declares.
 */
describe('security: decompression bombs', () => {
  const h = hostileServer();

  it('refuses a GeoTIFF strip bomb at registration as corrupt_tiff, in well under a gigabyte of memory', async () => {
    const dir = join(h.run.config.dataDir, 'bomb-2024-05');
    mkdirSync(dir, { recursive: true });
    const bomb = join(dir, 'strip-bomb.tif');
    // 1024 × 16 px of RGB declare 48 KiB; the strip inflates to 1 GiB
    writeFileSync(bomb, deflateStripTiff(1024, 16, 'rgb8', await deflatedZeros(GIB)));
    const hook = resolve('test/helpers/maxrss.mjs');
    const r = spawnSync(process.execPath, ['bin/tuban.mjs', 'imagery', 'register', '--month', '2024-05', bomb], {
      env: {
        ...process.env,
        DATABASE_URL: h.run.config.DATABASE_URL,
        TUBAN_DB_SCHEMA: h.run.config.TUBAN_DB_SCHEMA,
        TUBAN_DATA_DIR: h.run.config.dataDir,
        NODE_OPTIONS: `--import ${hook}`,
      },
      encoding: 'utf8',
      timeout: 300_000,
    });
    const maxRssMb = Number(/maxRSS=(\d+)/.exec(r.stderr)?.[1]) / 1024;
    console.log(`strip bomb: exit ${r.status}, peak RSS ${maxRssMb.toFixed(0)} MB; ${r.stdout.trim()}`);
    expect(r.status, r.stderr).toBe(2);
    expect(r.stdout + r.stderr).toMatch(/strip-bomb\.tif.*corrupt_tiff|corrupt_tiff.*strip-bomb\.tif/s);
    expect(r.stdout + r.stderr).toMatch(/inflates past the 49152 bytes/);
    expect(maxRssMb).toBeGreaterThan(0);
    expect(maxRssMb).toBeLessThan(1024);
    expect(await h.run.db('imagery').where({ month: '2024-05' })).toEqual([]);
  }, 300_000);

  it('refuses the same bomb in geotiff.js’s own layouts (16-bit), by the size the strip declares', async () => {
    const file = join(h.run.config.dataDir, 'grey16-bomb.tif');
    writeFileSync(file, deflateStripTiff(512, 8, 'grey16', await deflatedZeros(GIB)));
    const src = await GeoTiffSource.open(file);
    try {
      await expect(src.readWindow({ x: 0, y: 0, width: 512, height: 8 })).rejects.toMatchObject({
        code: 'corrupt_tiff',
        message: expect.stringMatching(/decodes past the 8192 bytes it declares/),
      });
    } finally {
      await src.close();
    }
  }, 120_000);

  it('takes three PNG evidence photos with gigabyte ICC profiles at once, /api/health answering within a second', async () => {
    const png = await pngWithIcc(await deflatedZeros(GIB));
    expect(png.length).toBeLessThan(2 << 20);
    expect(exifBlock(png, 'image/png')).toBeNull(); // no EXIF in it: the profile is never read

    const code = '350206-202403-0002';
    await h.toIllegal(code, 'dianqian');
    // the event loop's stalls: a health check every 20 ms, and the longest time from one answer to the next
    // (a loop blocked by a decompression delays the next check's start, not only its answer)
    const peak0 = process.resourceUsage().maxRSS;
    const gaps: number[] = [];
    let uploading = true;
    const poll = (async () => {
      let last = performance.now();
      while (uploading) {
        await new Promise((r) => setTimeout(r, 20));
        expect((await h.call(null, 'GET', '/api/health')).statusCode).toBe(200);
        const now = performance.now();
        gaps.push(now - last - 20);
        last = now;
      }
    })();
    const ups = await Promise.all(
      [1, 2, 3].map((k) =>
        h.call('dianqian', 'POST', `/api/patches/${code}/evidence?filename=icc-${k}.png`, png, {
          'content-type': 'image/png',
        }),
      ),
    );
    uploading = false;
    await poll;
    const slowest = Math.max(...gaps);
    const peakGrowthMb = (process.resourceUsage().maxRSS - peak0) / 1024;
    console.log(
      `3 ICC-bomb PNGs: ${ups.map((u) => u.statusCode).join(', ')}; /api/health ${gaps.length} checks, longest unanswered ${slowest.toFixed(0)} ms; peak RSS +${peakGrowthMb.toFixed(0)} MB`,
    );
    for (const u of ups) {
      expect(u.statusCode, u.body).toBe(201);
      expect(u.json()).toMatchObject({ taken_at: null, lon: null, lat: null });
    }
    expect(gaps.length).toBeGreaterThan(0);
    expect(slowest).toBeLessThan(1000);
    expect(peakGrowthMb).toBeLessThan(256);
  }, 120_000);
});
