import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/env.ts';
import { cmdBatchRun } from '../../cli/commands.ts';
import { createLogger } from '../../core/log.ts';
import type { Db } from '../../store/db.ts';
import { registerImagery } from '../../imagery/register.ts';
import { importLayer } from '../../store/layers.ts';
import type { BatchSummary } from '../../store/batch.ts';

export const KINDS = ['town', 'grid', 'permit', 'building', 'farmland', 'ecological', 'water'] as const;

export async function loadFixtureLayers(db: Db, fixturesDir: string): Promise<void> {
  for (const kind of KINDS) {
    const r = await importLayer(db, join(fixturesDir, 'layers', `${kind}.geojson`), kind);
    if (r.rejected.length)
      throw new Error(`fixture layer ${kind} had rejected features: ${JSON.stringify(r.rejected)}`);
  }
}

export async function registerFixtureMonths(db: Db, config: Config, fixturesDir: string): Promise<void> {
  for (const [month, date] of [
    ['2024-02', '2024-02-10'],
    ['2024-03', '2024-03-15'],
  ]) {
    const r = await registerImagery(db, config, month, [join(fixturesDir, 'imagery', month)], date);
    if (r.refused.length) throw new Error(`fixture imagery refused: ${JSON.stringify(r.refused)}`);
  }
}

/** Copy a month's tiles into a new folder (to stage another month from the same pixels). */
export function copyMonth(fixturesDir: string, month: string, to: string): string[] {
  mkdirSync(to, { recursive: true });
  return readdirSync(join(fixturesDir, 'imagery', month))
    .sort()
    .map((f) => {
      copyFileSync(join(fixturesDir, 'imagery', month, f), join(to, f));
      return join(to, f);
    });
}

export async function runBatch(db: Db, config: Config, month: string, baseline?: string): Promise<BatchSummary> {
  const r = await cmdBatchRun(db, config, createLogger(config.TUBAN_LOG_LEVEL), {
    month,
    baseline,
    wait: true,
    inProcessWorkers: true,
  });
  if (!r.summary) throw new Error('batch ended without summary');
  return r.summary;
}

/** A box in the fixtures' CRS (EPSG:4548, metres): [minX, minY, maxX, maxY]. */
export type WorldBox = [number, number, number, number];

/**
 * Copy a month's tiles into a new folder as another month, with the pixels inside `boxes` taken from
 * a third month: a demolition, where the ground of that month comes back. Each box may restore only
 * its western `share` (a partial demolition). Returns the files written.
 */
export async function stageDemolitions(
  fixturesDir: string,
  from: string,
  to: string,
  ground: string,
  boxes: { box: WorldBox; share?: number }[],
): Promise<string[]> {
  const { GeoTiffSource } = await import('../../pipeline/io/geotiff.source.ts');
  const { writeGeoTiff } = await import('../../pipeline/io/geotiff.write.ts');
  const files = copyMonth(fixturesDir, from, to);
  for (const file of files) {
    const name = file.split('/').pop()!;
    const cur = await GeoTiffSource.open(file);
    const old = await GeoTiffSource.open(join(fixturesDir, 'imagery', ground, name));
    const { widthPx: w, heightPx: h, bandCount: nb, geoTransform: gt, crs } = cur.info;
    const whole = { x: 0, y: 0, width: w, height: h };
    let a, b;
    try {
      [a, b] = await Promise.all([cur.readWindow(whole), old.readWindow(whole)]);
    } finally {
      await cur.close();
      await old.close();
    }
    let changed = false;
    for (const { box, share = 1 } of boxes) {
      const [x0, y0, x1, y1] = box;
      const xEnd = x0 + (x1 - x0) * share;
      const c0 = Math.max(0, Math.floor((x0 - gt[0]) / gt[1])),
        c1 = Math.min(w, Math.ceil((xEnd - gt[0]) / gt[1]));
      const r0 = Math.max(0, Math.floor((y1 - gt[3]) / gt[5])),
        r1 = Math.min(h, Math.ceil((y0 - gt[3]) / gt[5]));
      for (let r = r0; r < r1; r++)
        for (let c = c0; c < c1; c++) for (let k = 0; k < nb; k++) a[k][r * w + c] = b[k][r * w + c];
      changed ||= c1 > c0 && r1 > r0;
    }
    if (!changed) continue;
    const samples = new Uint8Array(w * h * nb);
    for (let i = 0; i < w * h; i++) for (let k = 0; k < nb; k++) samples[i * nb + k] = a[k][i];
    writeGeoTiff(file, { widthPx: w, heightPx: h, samples, bands: nb, crs, geoTransform: gt });
  }
  return files;
}

/**
 * `n` detected patches of 350206 (殿前街道) in 2024-03, codes …-0001 on, from a completed batch of their own
 * (its id returned): many patches without running one. 10 m squares (EPSG:4548), a hundred to a row, `step`
 * metres apart from `origin`.
 */
export async function seedPatches(
  db: Db,
  n: number,
  { origin = [520000, 2710000], step = 1000, model = 'm', version = '1', extensionM2 = 0 } = {},
): Promise<number> {
  const [batch] = await db('batch')
    .insert({
      month: '2024-03',
      baseline_month: '2024-02',
      status: 'completed',
      model_name: model,
      model_version: version,
    })
    .returning('id');
  await db.raw(
    `insert into patch (code, month, seq, batch_id, baseline_month, district_code, town_code, town_name, area_m2,
                        source_tiles, model_name, model_version, status, geom, centroid, extension_m2)
     select patch_code('350206', '2024-03', k), '2024-03', k, :batch, '2024-02', '350206', '350206001', '殿前街道', 100,
            '{}', :model, :version, 'detected', g, ST_PointOnSurface(g), :extension
     from generate_series(1, :n::int) k,
          lateral (select ST_Multi(ST_MakeEnvelope(:x + (k % 100) * :step, :y + (k / 100) * :step,
                                                   :x + (k % 100) * :step + 10, :y + (k / 100) * :step + 10, 4548)) g) s`,
    { batch: batch.id, model, version, extension: extensionM2, n, x: origin[0], y: origin[1], step },
  );
  return Number(batch.id);
}
