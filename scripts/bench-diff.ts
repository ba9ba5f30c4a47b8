/**
 * Benchmark: a province's month through the diff (issue 33). Builds, in a schema of its own on the
 * real PostgreSQL, the reference layers of a province — 300 towns of 5 km in 30 districts, 7,500 grids
 * of 1 km, about 2 M registered buildings on a 61 m lattice, 200 k permits, farmland, ecological and
 * water zones — and one batch of N change polygons (default 51,000) on 300 scenes cut in parts of
 * 1,024 m, as the workers leave them: new houses between the buildings, roofs rebuilt, extensions,
 * changes under permits, buildings cut by a part seam, some in the zones, a few re-detections of last
 * month's open patches. The layers are analysed (they were imported long before); the change polygons
 * are not (the batch has just stored them, and autovacuum is off for them, so every run plans on the
 * same statistics: those of an empty batch). Then runs the batch's diff as the worker does and prints
 * its stages, the patches by relation, and a digest of every patch (code, attributes, outline), so
 * two versions of the diff can be compared for identical output.
 *
 *   npx tsx scripts/bench-diff.ts [--polygons 51000] [--keep]
 *   npx tsx scripts/bench-diff.ts --schema tuban_bench_diff_xxxxxx   # the same batch again on a kept province
 *   npx tsx scripts/bench-diff.ts --history 36 [--schema …]   # with 36 earlier months' change polygons kept
 *
 * --history H stores H earlier batches' change polygons beside the batch's own (its outlines moved a
 * few metres, as the next month's detections fall near but not on this month's): what the table holds
 * after H months of batches, which the diff's seam check must pass by.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    polygons: { type: 'string' },
    keep: { type: 'boolean' },
    schema: { type: 'string' },
    history: { type: 'string' },
  },
});
const n = Number(values.polygons ?? 51_000);
const historyMonths = Number(values.history ?? 0);
if (!Number.isInteger(historyMonths) || historyMonths < 0 || historyMonths > 120) {
  console.error(`--history ${values.history}: expected 0–120 months`);
  process.exit(2);
}
if (!Number.isInteger(n) || n < 100 || n > 1_000_000) {
  console.error(`--polygons ${values.polygons}: expected 100–1,000,000`);
  process.exit(2);
}

const X0 = 400_000;
const Y0 = 2_600_000;
const TOWN_M = 5000;
const COLS = 30;
const ROWS = 10;
/** the building lattice: 2,450 × 816 cells of about 61 m over 150 × 50 km */
const NX = 2450;
const NY = 816;
const SX = (COLS * TOWN_M) / NX;
const SY = (ROWS * TOWN_M) / NY;
const PART_M = 1024;
const MONTH = '2026-02';
const LAST_MONTH = '2026-01';

const say = (s: string) => console.log(s);
const t = () => performance.now();
const secs = (since: number) => `${((t() - since) / 1000).toFixed(1)} s`;

async function main(): Promise<void> {
  const { loadConfig } = await import('../config/env.ts');
  const { openDb } = await import('../store/db.ts');
  const { migrate } = await import('../store/migrate.ts');
  const { runDiff } = await import('../store/batch.diff.ts');
  const work = mkdtempSync(join(tmpdir(), 'tuban-bench-diff-'));
  const config = loadConfig({
    ...process.env,
    DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    TUBAN_DB_SCHEMA: values.schema ?? `tuban_bench_diff_${randomBytes(3).toString('hex')}`,
    TUBAN_DATA_DIR: work,
    TUBAN_LOG_LEVEL: 'warn',
  });
  const db = await openDb(config);
  const schema = config.TUBAN_DB_SCHEMA;
  const reuse = values.schema !== undefined;
  try {
    await migrate(db, config);
    if (reuse) await reset();
    else {
      await layers();
      await batch();
    }
    await history();
    await run();
  } finally {
    if (!values.keep && !reuse) await db.raw(`drop schema "${schema}" cascade`);
    else say(`kept schema ${schema}`);
    await db.destroy();
    rmSync(work, { recursive: true, force: true });
  }

  async function layers(): Promise<void> {
    say(`schema ${schema}`);
    let t0 = t();
    // towns (code district + 3 digits) and their 1 km grids
    await db.raw(
      `insert into reference_feature (kind, code, name, district_code, source_file, source_index, geom)
       select 'town', d || lpad((i % 10 + 1)::text, 3, '0'), '镇街' || (i + 1), d, 'towns.geojson', i,
              ST_Multi(ST_MakeEnvelope(${X0} + (i % ${COLS}) * ${TOWN_M}, ${Y0} + (i / ${COLS}) * ${TOWN_M},
                                       ${X0} + (i % ${COLS} + 1) * ${TOWN_M}, ${Y0} + (i / ${COLS} + 1) * ${TOWN_M}, 4548))
       from generate_series(0, ${COLS * ROWS - 1}) i, lateral (select '35' || lpad((10 + i / 10)::text, 2, '0') || '00' as d) dd`,
    );
    await db.raw(
      `insert into reference_feature (kind, code, name, source_file, source_index, geom)
       select 'grid', 'G' || lpad(g::text, 5, '0'), '网格' || g, 'grids.geojson', g,
              ST_Multi(ST_MakeEnvelope(${X0} + (g % 150) * 1000, ${Y0} + (g / 150) * 1000,
                                       ${X0} + (g % 150 + 1) * 1000, ${Y0} + (g / 150 + 1) * 1000, 4548))
       from generate_series(0, 150 * 50 - 1) g`,
    );
    // a building of 12 × 10 m in every lattice cell, moved up to ±3 m
    await db.raw(
      `insert into reference_feature (kind, code, source_file, source_index, geom)
       select 'building', 'B' || c, 'buildings.geojson', c,
              ST_Multi(ST_MakeEnvelope(x - 6, y - 5, x + 6, y + 5, 4548))
       from generate_series(0::bigint, ${NX * NY - 1}) c,
            lateral (select ${X0} + (c % ${NX} + 0.5) * ${SX} + ((c * 7919) % 7 - 3) as x,
                            ${Y0} + (c / ${NX} + 0.5) * ${SY} + ((c * 104729) % 7 - 3) as y) p`,
    );
    say(`towns, grids, buildings: ${secs(t0)}`);
    t0 = t();
    // a permit of 20 × 20 m on the gap of every tenth cell (half valid on the imagery date)
    await db.raw(
      `insert into reference_feature (kind, code, source_file, source_index, valid_from, valid_to, geom)
       select 'permit', 'P' || c, 'permits.geojson', c, date '2025-06-01',
              case when c % 20 = 3 then date '2027-06-01' else date '2025-12-31' end,
              ST_Multi(ST_MakeEnvelope(x - 10, y - 10, x + 10, y + 10, 4548))
       from generate_series(3::bigint, ${NX * NY - 1}, 10) c,
            lateral (select ${X0} + (c % ${NX} + 1) * ${SX} as x, ${Y0} + (c / ${NX} + 1) * ${SY} as y) p`,
    );
    // zones: farmland (3,000 squares of 600 m), ecological (300 of 1 km), water (500 of 400 m)
    for (const [kind, count, size, prime] of [
      ['farmland', 3000, 600, 7919],
      ['ecological', 300, 1000, 104729],
      ['water', 500, 400, 15485863],
    ] as const)
      await db.raw(
        `insert into reference_feature (kind, code, source_file, source_index, geom)
         select '${kind}', '${kind[0].toUpperCase()}' || z, '${kind}.geojson', z,
                ST_Multi(ST_MakeEnvelope(x, y, x + ${size}, y + ${size}, 4548))
         from generate_series(0, ${count - 1}) z,
              lateral (select ${X0} + (z::bigint * ${prime}) % ${COLS * TOWN_M - size} as x,
                              ${Y0} + (z::bigint * ${prime} * 31) % ${ROWS * TOWN_M - size} as y) p`,
      );
    await db.raw('analyze reference_feature');
    const counts = await db('reference_feature')
      .groupBy('kind')
      .orderBy('kind')
      .select('kind', db.raw('count(*)::int as n'));
    say(`layers: ${counts.map((c) => `${c.kind} ${c.n.toLocaleString('en')}`).join(', ')} (${secs(t0)} more)`);
  }

  async function batch(): Promise<void> {
    const t0 = t();
    const [last] = await db('batch')
      .insert({
        month: LAST_MONTH,
        baseline_month: '2025-12',
        status: 'completed',
        model_name: 'bench',
        model_version: '0',
      })
      .returning('id');
    const [current] = await db('batch')
      .insert({ month: MONTH, baseline_month: LAST_MONTH, status: 'running', model_name: 'bench', model_version: '0' })
      .returning('id');
    // one scene per town, 10,000 px square at 0.5 m
    await db.raw(
      `insert into imagery (month, path, acquired_on, file_bytes, width_px, height_px, band_count, sample_type, srid,
                            geotransform, gsd_m, footprint)
       select '${MONTH}', 'scenes/' || lpad(i::text, 3, '0') || '.tif', date '${MONTH}-10', 300000000, 10000, 10000, 3, 'uint8', 4548,
              array[x, 0.5, 0, y + ${TOWN_M}, 0, -0.5], 0.5, ST_MakeEnvelope(x, y, x + ${TOWN_M}, y + ${TOWN_M}, 4548)
       from generate_series(0, ${COLS * ROWS - 1}) i,
            lateral (select ${X0} + (i % ${COLS}) * ${TOWN_M} as x, ${Y0} + (i / ${COLS}) * ${TOWN_M} as y) p`,
    );
    await db.raw(
      `insert into batch_tile (batch_id, imagery_id, status, windows, polygons)
       select ?, id, 'vectorized', 400, 0 from imagery where month = '${MONTH}'`,
      [current.id],
    );
    // the change polygons, by kind of change (k % 20), each in a lattice cell spread over the province;
    // outlines with rounded corners (a pixel outline's corners are not one vertex)
    await db.raw(
      `create temporary table bench_change as
       with spread as (
         select k, (k::bigint * 39 + (k::bigint * 2654435761) % 37) % ${NX * NY} as c from generate_series(1, ?::int) k
       ),
       placed as (
         select k, c, ${X0} + (c % ${NX} + 0.5) * ${SX} + ((c * 7919) % 7 - 3) as bx,
                ${Y0} + (c / ${NX} + 0.5) * ${SY} + ((c * 104729) % 7 - 3) as by,
                ${X0} + (c % ${NX} + 1) * ${SX} as gx, ${Y0} + (c / ${NX} + 1) * ${SY} as gy
         from spread
       )
       select k, c, g.geom, 0.5 + ((k::bigint * 7919) % 45) / 100.0 as mean_prob
       from placed, lateral (
         select case
           -- a new house on the gap between four buildings (under a permit on every tenth cell)
           when k % 20 < 9 then ST_MakeEnvelope(gx - 7, gy - 7, gx + 7, gy + 7, 4548)
           -- a roof rebuilt: over the registered building and a little beyond
           when k % 20 < 12 then ST_MakeEnvelope(bx - 7, by - 6, bx + 7, by + 6, 4548)
           -- an extension: 10 × 10 m against the building's east wall, 2 m on it
           when k % 20 < 14 then ST_MakeEnvelope(bx + 4, by - 5, bx + 14, by + 5, 4548)
           -- a larger new building of 24 × 18 m on the gap
           else ST_MakeEnvelope(gx - 12, gy - 9, gx + 12, gy + 9, 4548)
         end as shape) s,
       lateral (select ST_Buffer(ST_Buffer(s.shape, -1, 'join=mitre'), 1, 'quad_segs=2') as geom) g`,
      [n],
    );
    // every tenth larger building sits on a part seam: cut in two along the seam, one piece per part
    await db.raw(
      `create temporary table bench_piece as
       select k, mean_prob, piece
       from (
         select b.k, b.mean_prob, b.geom, o.tx, o.tx + round((ST_X(ST_Centroid(b.geom)) - o.tx) / ${PART_M}) * ${PART_M} as seam_x
         from bench_change b,
              lateral (select ${X0} + floor((ST_X(ST_Centroid(b.geom)) - ${X0}) / ${TOWN_M}) * ${TOWN_M} as tx) o
       ) b,
       lateral (
         select unnest(case
           when b.k % 20 >= 14 and b.k % 200 >= 140 and b.k % 200 < 150
                and b.seam_x - b.tx between ${PART_M} and ${4 * PART_M}
           then array[ST_Intersection(ST_Translate(b.geom, b.seam_x - ST_X(ST_Centroid(b.geom)), 0),
                                      ST_MakeEnvelope(b.seam_x - 100, 0, b.seam_x, 1e8, 4548)),
                      ST_Intersection(ST_Translate(b.geom, b.seam_x - ST_X(ST_Centroid(b.geom)), 0),
                                      ST_MakeEnvelope(b.seam_x, 0, b.seam_x + 100, 1e8, 4548))]
           else array[b.geom] end) as piece
       ) p`,
    );
    await db.raw(
      `insert into change_polygon (batch_id, imagery_id, part, seq, geom, area_m2, pixel_count, mean_prob)
       select ?, i.id, q.part, row_number() over (partition by i.id, q.part order by b.k, ST_X(ST_Centroid(b.piece))),
              ST_Multi(b.piece), ST_Area(b.piece), (ST_Area(b.piece) * 4)::int, b.mean_prob
       from bench_piece b
       cross join lateral (select ST_PointOnSurface(b.piece) as p) pt
       join imagery i on i.month = '${MONTH}' and ST_Intersects(i.footprint, pt.p)
       cross join lateral (
         select floor((ST_X(pt.p) - i.geotransform[1]) / ${PART_M})::int
                + 5 * floor((i.geotransform[4] - ST_Y(pt.p)) / ${PART_M})::int as part
       ) q`,
      [current.id],
    );
    // last month: an open patch on every 33rd change (a re-detection now)
    await db.raw(
      `insert into patch (code, month, seq, batch_id, baseline_month, district_code, town_code, town_name, area_m2,
                          source_tiles, model_name, model_version, status, geom, centroid, extension_m2, class, mean_prob)
       select patch_code(t.district_code, '${LAST_MONTH}', row_number() over (partition by t.district_code order by b.k)::int),
              '${LAST_MONTH}', row_number() over (partition by t.district_code order by b.k), ?, '2025-12',
              t.district_code, t.code, t.name, ST_Area(b.geom), '{}', 'bench', '0', 'dispatched',
              ST_Multi(b.geom), ST_PointOnSurface(b.geom), 0, 'general', b.mean_prob
       from bench_change b
       join reference_feature t on t.kind = 'town' and ST_Intersects(t.geom, ST_PointOnSurface(b.geom))
       where b.k % 33 = 0 and b.k % 20 >= 9`,
      [last.id],
    );
    await db.raw('analyze patch');
    await db.raw('alter table change_polygon set (autovacuum_enabled = false, toast.autovacuum_enabled = false)');
    const [{ pieces }] = (
      await db.raw('select count(*)::int as pieces from change_polygon where batch_id = ?', [current.id])
    ).rows;
    say(
      `batch ${current.id}: ${pieces.toLocaleString('en')} change polygons from ${n.toLocaleString('en')} changes on 300 scenes (${secs(t0)})`,
    );
  }

  /** Earlier months' change polygons up to --history batches (a kept province keeps those it has). */
  async function history(): Promise<void> {
    const t0 = t();
    const current = await db('batch').where({ month: MONTH }).first('id');
    const earlier = await db('batch').where('month', '<', '2025-12').count({ n: '*' });
    for (let i = Number(earlier[0].n); i < historyMonths; i++) {
      const month = `${2016 + Math.floor(i / 12)}-${String((i % 12) + 1).padStart(2, '0')}`;
      const [b] = await db('batch')
        .insert({ month, baseline_month: month, status: 'completed', model_name: 'bench', model_version: '0' })
        .returning('id');
      await db.raw(
        `insert into change_polygon (batch_id, imagery_id, part, seq, geom, area_m2, pixel_count, mean_prob)
         select ?, imagery_id, part, seq, ST_Translate(geom, ?, ?), area_m2, pixel_count, mean_prob
         from change_polygon where batch_id = ?`,
        [b.id, ((i * 17) % 41) - 20, ((i * 29) % 37) - 18, current.id],
      );
    }
    const [{ total }] = (await db.raw('select count(*)::int as total from change_polygon')).rows;
    if (historyMonths > 0)
      say(
        `change polygons of ${historyMonths} earlier months kept: ${total.toLocaleString('en')} in all (${secs(t0)})`,
      );
  }

  /** A kept province: its batch made ready to diff again (its patches and their history removed). */
  async function reset(): Promise<void> {
    const b = await db('batch').where({ month: MONTH }).first('id');
    await db.transaction(async (trx) => {
      await trx.raw('set local session_replication_role = replica'); // past the history's append-only triggers
      await trx.raw(`delete from patch_event where (detail->>'batch_id')::bigint = ?`, [b.id]);
      await trx('patch_observation').where({ batch_id: b.id }).delete();
      await trx('batch_candidate').where({ batch_id: b.id }).delete();
      await trx('patch').where({ batch_id: b.id }).delete();
      await trx('batch').where({ id: b.id }).update({
        status: 'running',
        summary: null,
        finished_at: null,
        candidates_round: null,
        candidates_timings: null,
      });
    });
    await db.raw('vacuum analyze patch, patch_observation, batch_candidate'); // as after the month before's batch
    say(`schema ${schema} as kept: batch ${b.id} reset`);
  }

  async function run(): Promise<void> {
    const b = await db('batch').where({ month: MONTH }).first('id');
    const stats = await db.raw(
      `select coalesce(n_live_tup, 0)::int as live, last_analyze, last_autoanalyze
       from pg_stat_user_tables where schemaname = ? and relname = 'change_polygon'`,
      [schema],
    );
    const s = stats.rows[0];
    say(`change_polygon statistics: last analysed ${s?.last_analyze ?? s?.last_autoanalyze ?? 'never'}`);
    say(`diff on ${config.TUBAN_DIFF_PARALLEL} connection(s) at once (TUBAN_DIFF_PARALLEL)`);
    const t0 = t();
    const summary = await runDiff(db, config, b.id, 'bench');
    const total = t() - t0;
    const timings = (summary as { timings?: Record<string, number> }).timings ?? {};
    say(
      `diff of ${summary.changePolygons.toLocaleString('en')} change polygons: ${(total / 1000).toFixed(1)} s ` +
        `(candidates ${((timings.diffMs ?? 0) / 1000).toFixed(1)} s, match ${((timings.matchMs ?? 0) / 1000).toFixed(1)} s, ` +
        `emit ${((timings.emitMs ?? 0) / 1000).toFixed(1)} s)`,
    );
    say(
      `candidates ${summary.candidates.toLocaleString('en')}; new patches ${summary.patches.new.toLocaleString('en')} ` +
        `(${Object.entries(summary.newByRelation ?? {})
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}), re-detected ${summary.patches.redetected}`,
    );
    const [digest] = (
      await db.raw(
        `select count(*)::int as n, md5(string_agg(concat_ws('|', code, town_code, grid_code, district_code, building_relation,
                  area_m2, registered_building_m2, extension_m2, farmland_m2, ecological_m2, water_m2, mean_prob, class,
                  source_tiles::text, md5(ST_AsBinary(geom))), ',' order by code)) as md5,
                count(*) filter (where class <> 'general')::int as zoned
         from patch where batch_id = ?`,
        [b.id],
      )
    ).rows;
    say(`patches ${digest.n.toLocaleString('en')} (${digest.zoned} in a zone), digest ${digest.md5}`);
  }
}

await main();
