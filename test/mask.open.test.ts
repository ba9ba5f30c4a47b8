import knexFactory from 'knex';
import { describe, expect, it } from 'vitest';
import { openMask } from '../pipeline/mask.open.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';
import { TEST_DATABASE_URL } from './helpers/services.ts';

/** Random blobs: rectangles and single-pixel spurs, like a thresholded change map. */
function blobs(w: number, h: number, seed: number): Uint8Array {
  let s = seed;
  const rnd = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const m = new Uint8Array(w * h);
  for (let n = 0; n < 12; n++) {
    const x0 = Math.floor(rnd() * w),
      y0 = Math.floor(rnd() * h);
    const bw = 1 + Math.floor(rnd() * 12),
      bh = 1 + Math.floor(rnd() * 12);
    for (let y = y0; y < Math.min(h, y0 + bh); y++) for (let x = x0; x < Math.min(w, x0 + bw); x++) m[y * w + x] = 1;
  }
  for (let n = 0; n < 40; n++) m[Math.floor(rnd() * w * h)] = 1;
  return m;
}

/** The definition: a pixel stays when some (2r+1)² square of foreground (beyond the edges counts) covers it. */
function bruteOpen(m: Uint8Array, w: number, h: number, r: number): Uint8Array {
  const fg = (x: number, y: number) => x < 0 || y < 0 || x >= w || y >= h || m[y * w + x] !== 0;
  const eroded = new Uint8Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let all = true;
      for (let dy = -r; dy <= r && all; dy++) for (let dx = -r; dx <= r && all; dx++) all = fg(x + dx, y + dy);
      eroded[y * w + x] = all ? 1 : 0;
    }
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let any = false;
      for (let dy = -r; dy <= r && !any; dy++)
        for (let dx = -r; dx <= r && !any; dx++) {
          const qx = x + dx,
            qy = y + dy;
          any = qx >= 0 && qy >= 0 && qx < w && qy < h && eroded[qy * w + qx] === 1;
        }
      out[y * w + x] = any ? 1 : 0;
    }
  return out;
}

describe('openMask', () => {
  it('is the opening by a square, also at the edges, for every radius', () => {
    for (const [w, h] of [
      [37, 23],
      [64, 64],
    ])
      for (let seed = 1; seed <= 6; seed++)
        for (const r of [0, 1, 2, 3]) {
          const m = blobs(w, h, seed);
          const want = r === 0 ? m.slice() : bruteOpen(m, w, h, r);
          openMask(m, w, h, r);
          expect(Buffer.from(m).equals(Buffer.from(want)), `${w}×${h} seed ${seed} r ${r}`).toBe(true);
        }
  });

  it('removes a 3-pixel neck and keeps the two squares it joined', () => {
    const w = 20,
      h = 9;
    const m = new Uint8Array(w * h);
    const fill = (x0: number, y0: number, x1: number, y1: number) => {
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) m[y * w + x] = 1;
    };
    fill(1, 1, 8, 8);
    fill(12, 1, 19, 8);
    fill(8, 3, 12, 6); // 3 px high bridge
    openMask(m, w, h, 2);
    expect(m.reduce((a, v) => a + v, 0)).toBe(2 * 49);
  });

  it('opens a part with a halo of twice the radius as the whole scene would be opened', () => {
    const w = 64,
      h = 48,
      r = 2;
    const gt = [0, 0.5, 0, 24, 0, -0.5] as const;
    for (let seed = 1; seed <= 5; seed++) {
      const scene = blobs(w, h, seed);
      const pixels = (fs: ReturnType<typeof vectorizeRaster>) => fs.reduce((a, f) => a + f.properties.pixel_count, 0);
      const whole = pixels(vectorizeRaster(scene, w, h, gt, { openingPx: r }));
      let parts = 0;
      for (const [x0, x1] of [
        [0, 32],
        [32, 64],
      ]) {
        const hx0 = Math.max(0, x0 - 2 * r),
          hx1 = Math.min(w, x1 + 2 * r);
        const win = new Uint8Array((hx1 - hx0) * h);
        for (let y = 0; y < h; y++) win.set(scene.subarray(y * w + hx0, y * w + hx1), y * (hx1 - hx0));
        const core = { x: x0 - hx0, y: 0, width: x1 - x0, height: h };
        parts += pixels(vectorizeRaster(win, hx1 - hx0, h, gt, { openingPx: r, core, offsetPx: { x: hx0, y: 0 } }));
      }
      expect(parts, `seed ${seed}`).toBe(whole);
    }
  });

  it('gives the pixels PostGIS keeps with the mitred double buffer the diff used', async () => {
    const db = knexFactory({ client: 'pg', connection: TEST_DATABASE_URL });
    try {
      await db.raw('create extension if not exists postgis');
      const w = 64,
        h = 64;
      for (let seed = 1; seed <= 4; seed++) {
        // blobs away from the edges, so the edge rule plays no part
        const m = new Uint8Array(w * h);
        const inner = blobs(w - 8, h - 8, seed);
        for (let y = 0; y < h - 8; y++) for (let x = 0; x < w - 8; x++) m[(y + 4) * w + x + 4] = inner[y * (w - 8) + x];
        const polys = vectorizeRaster(m, w, h, [0, 0.5, 0, 32, 0, -0.5]).map((f) => JSON.stringify(f.geometry));
        const { rows } = await db.raw(
          `select coalesce(sum(ST_Area(ST_Buffer(ST_Buffer(ST_GeomFromGeoJSON(g), -1, 'join=mitre'), 1, 'join=mitre'))), 0) a
           from unnest(?::text[]) g`,
          [polys],
        );
        openMask(m, w, h, 2);
        const pixels = m.reduce((a, v) => a + v, 0);
        expect(Number(rows[0].a), `seed ${seed}`).toBeCloseTo(pixels * 0.25, 6);
      }
    } finally {
      await db.destroy();
    }
  });
});
