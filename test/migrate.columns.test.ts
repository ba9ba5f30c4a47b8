import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Config } from '../config/env.ts';
import type { Db } from '../store/db.ts';
import { migrate } from '../store/migrate.ts';
import { streamCsv } from '../export/patches.ts';
import { csvCell } from '../export/write.text.ts';
import { CELL_TEXTS } from './helpers/cells.ts';
import { testWorkflowEnv } from './helpers/api.ts';
import { seedPatches } from './helpers/batch.ts';
import { referenceCsv } from './helpers/csv.ts';
import { cleanup, isolatedConfig, migratedDb } from './helpers/services.ts';

/**
 * Copies the month's CSV reads on every line, kept on the patch (issue 33): its centre in longitude and
 * latitude (migration 035; the CSV transformed it twice per line), its latest note (036; one probe of
 * the history per line) and the CSV's cells that depend on its row alone (037). A database that has
 * patches before gets their values when it is migrated, and no writer can leave them behind what they copy.
 */
describe('columns kept on the patch (migrations 035, 036, 037)', () => {
  let config: Config;
  let db: Db;
  beforeEach(async () => {
    config = isolatedConfig();
    db = await migratedDb(config);
  });
  afterEach(async () => cleanup(db, config));

  const transformed = async (code: string) =>
    (
      await db.raw(
        `select lon, lat, ST_X(ST_Transform(centroid, 4326)) as x, ST_Y(ST_Transform(centroid, 4326)) as y
         from patch where code = ?`,
        [code],
      )
    ).rows[0] as { lon: number; lat: number; x: number; y: number };

  it("writes text cells as csvCell does (csv_text, migration 038's body)", async () => {
    const texts = [...CELL_TEXTS, 'one\nline', '"', ',', '现场核实，业主称“临时”', '=a,b', '-"q"'];
    const { rows } = await db.raw(
      `select s, csv_text(s) as cell from unnest(?::text[]) with ordinality as t(s, i) order by i`,
      [texts],
    );
    expect(rows.map((r: { cell: string }) => r.cell)).toEqual(texts.map((t) => csvCell(t)));
    expect((await db.raw('select csv_text(null) as cell')).rows[0].cell).toBe('');
  });

  it('fills the patches a database already holds, and follows a centroid that moves', async () => {
    // the database as it was before 035, with two patches in it
    await db.raw('alter table patch drop column lon, drop column lat');
    await db.raw('drop trigger patch_latest_note on patch_event');
    await db.raw('alter table patch drop column latest_note, drop column latest_note_id');
    await db('knex_migrations').whereIn('name', ['035_patch_lonlat.sql', '036_patch_latest_note.sql']).delete();
    await seedPatches(db, 2);
    expect(await migrate(db, config)).toEqual(['035_patch_lonlat.sql', '036_patch_latest_note.sql']);
    for (const code of ['350206-202403-0001', '350206-202403-0002']) {
      const p = await transformed(code);
      expect(p.lon).toBe(p.x);
      expect(p.lat).toBe(p.y);
      // Xiamen, where 4548's false easting puts these metres
      expect(p.lon).toBeGreaterThan(117);
      expect(p.lon).toBeLessThan(118.5);
      expect(p.lat).toBeGreaterThan(24);
      expect(p.lat).toBeLessThan(25);
    }
    const before = await transformed('350206-202403-0001');
    await db.raw(
      `update patch set geom = ST_Translate(geom, 500, 800), centroid = ST_Translate(centroid, 500, 800)
       where code = '350206-202403-0001'`,
    );
    const after = await transformed('350206-202403-0001');
    expect(after.lon).toBe(after.x);
    expect(after.lat).toBe(after.y);
    expect(after.lon).toBeGreaterThan(before.lon);
    expect(after.lat).toBeGreaterThan(before.lat);
    // written only by the database
    await expect(db('patch').where({ code: '350206-202403-0002' }).update({ lon: 0 })).rejects.toThrow(
      /can only be updated to DEFAULT/,
    );
  }, 120_000);

  it("fills each patch's latest note from its history, and follows every note written after", async () => {
    await seedPatches(db, 3);
    const ids = Object.fromEntries(
      (await db('patch').select('id', 'code')).map((p: { id: string; code: string }) => [p.code.slice(-1), p.id]),
    );
    const event = (k: string, type: string, text?: string) => ({
      patch_id: ids[k],
      actor: 'ana',
      type,
      from_status: 'detected',
      to_status: 'detected',
      detail: JSON.stringify(text === undefined ? {} : { text }),
    });
    const notes = async () =>
      Object.fromEntries(
        (await db('patch').orderBy('code').select('code', 'latest_note')).map(
          (p: { code: string; latest_note: string | null }) => [p.code.slice(-1), p.latest_note],
        ),
      );
    // the history as it was before 036: two notes on 1, then a move; none on 2
    await db.raw('drop trigger patch_latest_note on patch_event');
    await db.raw('alter table patch drop column latest_note, drop column latest_note_id');
    await db('knex_migrations').where({ name: '036_patch_latest_note.sql' }).delete();
    await db('patch_event').insert(event('1', 'note', '第一次'));
    await db('patch_event').insert(event('1', 'note', '拆了一半'));
    await db('patch_event').insert(event('1', 'review'));
    await db('patch_event').insert(event('3', 'note', '屋顶'));
    expect(await migrate(db, config)).toEqual(['036_patch_latest_note.sql']);
    expect(await notes()).toEqual({ '1': '拆了一半', '2': null, '3': '屋顶' });
    // a move writes no note and changes none
    await db('patch_event').insert(event('3', 'review'));
    expect(await notes()).toEqual({ '1': '拆了一半', '2': null, '3': '屋顶' });
    // one statement with several notes: each patch gets its last
    await db('patch_event').insert([event('2', 'note', 'a'), event('1', 'note', 'b'), event('2', 'note', 'c')]);
    expect(await notes()).toEqual({ '1': 'b', '2': 'c', '3': '屋顶' });
    // and under session_replication_role = replica (maintenance), which other triggers let past
    await db.transaction(async (trx) => {
      await trx.raw('set local session_replication_role = replica');
      await trx('patch_event').insert(event('3', 'note', '已拆除'));
    });
    expect(await notes()).toEqual({ '1': 'b', '2': 'c', '3': '已拆除' });
    // a note older than the one a patch holds does not replace it: two written at once may reach the patch
    // in either order (here the patch holds, as it would then, a later note's id than the next one's)
    await db('patch').where({ id: ids['2'] }).update({ latest_note_id: 1_000_000_000 });
    await db('patch_event').insert(event('2', 'note', 'd'));
    expect(await notes()).toEqual({ '1': 'b', '2': 'c', '3': '已拆除' });
    await db('patch_event').insert(event('1', 'note', 'e'));
    expect(await notes()).toEqual({ '1': 'e', '2': 'c', '3': '已拆除' });
  }, 120_000);

  it("writes the CSV's cells of the patches a database already holds, and rewrites them with the patch", async () => {
    const env = testWorkflowEnv(() => '2024-04-15');
    const csv = async () => {
      const pieces: Buffer[] = [];
      await streamCsv(db, env, { month: '2024-03' }, async (c) => {
        pieces.push(Buffer.from(c));
      });
      return Buffer.concat(pieces).toString('utf8');
    };
    // the database as it was before 037, with three patches in it, one reported on patrol (no model, no confidence)
    await db.raw('alter table patch drop column csv_place, drop column csv_building, drop column csv_model');
    await db('knex_migrations').where({ name: '037_patch_csv_cells.sql' }).delete();
    await seedPatches(db, 3);
    await db('patch').where({ code: '350206-202403-0003' }).update({
      source: 'patrol',
      batch_id: null,
      visible: true,
      reported_by: 'clerk',
      model_name: null,
      model_version: null,
      mean_prob: null,
      grid_code: '=g',
      farmland_m2: 0.125, // a half to round up, as Math.round does
    });
    // and one whose centre is an empty point (no coordinates: four empty cells, the rest in place)
    await db.raw(`update patch set centroid = ST_SetSRID('POINT EMPTY'::geometry, 4548) where code = ?`, [
      '350206-202403-0002',
    ]);
    expect(await migrate(db, config)).toEqual(['037_patch_csv_cells.sql']);
    const migrated = await csv();
    expect(migrated).toMatch(/\r\n350206-202403-0002,2024-03,,,350206,350206001,殿前街道,,,,,,100,0\.15,/);
    expect(migrated).toBe((await referenceCsv(db, env, '2024-03')).toString('utf8'));
    expect(migrated).toContain(",'=g,");
    // a write to the patch rewrites its cells: a town renamed with a comma, a measure, the model
    await db('patch').where({ code: '350206-202403-0001' }).update({
      town_name: '殿前,"新"',
      area_m2: 1234.565,
      extension_m2: 10.005,
      building_relation: 'extension',
      model_name: 'siam-unet-lite',
      model_version: '2.3.1',
      mean_prob: 0.875,
    });
    const moved = await csv();
    expect(moved).toBe((await referenceCsv(db, env, '2024-03')).toString('utf8'));
    expect(moved).toContain('"殿前,""新"""');
    expect(moved).toContain('siam-unet-lite 2.3.1,0.88,');
    // written only by the database
    await expect(db('patch').where({ code: '350206-202403-0002' }).update({ csv_place: 'x' })).rejects.toThrow(
      /can only be updated to DEFAULT/,
    );
  }, 120_000);
});
