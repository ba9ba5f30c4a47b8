import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildServer } from '../server/app.ts';
import { csvPlan, exportPatches, streamCsv } from '../export/patches.ts';
import { addNote } from '../store/workflow.ts';
import { createUser, issueToken } from '../store/users.ts';
import { testWorkflowEnv } from './helpers/api.ts';
import { runBatch } from './helpers/batch.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';
import { FIELDS } from '../export/fields.ts';
import { referenceCsv } from './helpers/csv.ts';

const ogrinfo = (...args: string[]) => execFileSync('ogrinfo', args, { encoding: 'utf8' });

/** Every vector export read back with GDAL's own reader: count, CRS, field names, a Chinese value. */
describe('patch list exports', () => {
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  const env = testWorkflowEnv(() => '2024-03-20');
  const out = (name: string) => join(run.config.dataDir, name);
  const exp = (format: string, name: string, town?: string) =>
    exportPatches(run.db, env, { month: '2024-03', town, format, outPath: out(name), storageSrid: 4548 });

  beforeAll(async () => {
    run = await freshRun(fixturesDir);
    await runBatch(run.db, run.config, '2024-03', '2024-02');
  });
  afterAll(async () => cleanup(run.db, run.config));

  it('writes a GeoPackage in the storage CRS with the attribute table', async () => {
    expect((await exp('gpkg', 'p.gpkg')).count).toBe(5);
    const summary = ogrinfo('-so', '-al', out('p.gpkg'));
    expect(summary).toContain('Feature Count: 5');
    expect(summary).toContain('CGCS2000 / 3-degree Gauss-Kruger CM 117E');
    expect(summary).toMatch(/code: String/);
    expect(summary).toMatch(/area_mu: Real/);
    // every column has its declared type whatever the values (here water_m2 is 0 for every patch)
    for (const f of FIELDS)
      expect(summary, f.name).toMatch(
        new RegExp(`\\n${f.name}: ${{ string: 'String', real: 'Real', integer: 'Integer' }[f.type]} `),
      );
    const one = ogrinfo('-al', '-q', '-where', "code = '350206-202403-0002'", out('p.gpkg'));
    expect(one).toContain('town (String) = 殿前街道');
    expect(one).toMatch(/MULTIPOLYGON \(\(\(61/);
    // Chinese aliases in the GeoPackage schema extension (gpkg_data_columns), read back through GDAL
    const aliases = ogrinfo(
      '-q',
      out('p.gpkg'),
      '-sql',
      "SELECT column_name, name FROM gpkg_data_columns WHERE table_name = 'patches' AND column_name IN ('code', 'town', 'area_mu')",
    );
    expect(aliases).toContain('name (String) = 图斑编号');
    expect(aliases).toContain('name (String) = 镇街');
    expect(
      ogrinfo(
        '-q',
        out('p.gpkg'),
        '-sql',
        "SELECT extension_name FROM gpkg_extensions WHERE table_name = 'gpkg_data_columns'",
      ),
    ).toContain('gpkg_schema');
  });

  it('writes a Shapefile with .prj and a UTF-8 .cpg that GDAL reads back in Chinese', async () => {
    const r = await exp('shp', 'shp');
    expect(r.files.map((f) => f.split('.').pop() ?? '').sort()).toEqual(['cpg', 'dbf', 'prj', 'shp', 'shx']);
    expect(readFileSync(join(out('shp'), 'patches.cpg'), 'utf8').trim()).toBe('UTF-8');
    const summary = ogrinfo('-so', '-al', join(out('shp'), 'patches.shp'));
    expect(summary).toContain('Feature Count: 5');
    expect(summary).toContain('CGCS2000 / 3-degree Gauss-Kruger CM 117E');
    expect(ogrinfo('-al', '-q', '-where', "code = '350206-202403-0001'", join(out('shp'), 'patches.shp'))).toContain(
      'town (String) = 禾山街道',
    );
  });

  it('writes GeoJSON in lon/lat, KML for field apps, and CSV with a BOM', async () => {
    await exp('geojson', 'p.geojson');
    const gj = ogrinfo('-so', '-al', out('p.geojson'));
    expect(gj).toContain('Feature Count: 5');
    expect(gj).toMatch(/WGS 84/);
    expect(JSON.parse(readFileSync(out('p.geojson'), 'utf8')).features[0].geometry.coordinates[0][0][0][0]).toBeCloseTo(
      118.1,
      1,
    );
    await exp('kml', 'p.kml');
    expect(ogrinfo('-so', '-al', out('p.kml'))).toContain('Feature Count: 5');
    // every id in the document is unique, and each patch is drawn in its state's style
    const kml = readFileSync(out('p.kml'), 'utf8');
    const ids = [...kml.matchAll(/ id="([^"]+)"/g)].map((m) => m[1]);
    expect(new Set(ids).size).toBe(ids.length);
    expect(kml.match(/<styleUrl>#status-detected<\/styleUrl>/g)).toHaveLength(5);
    expect(kml).toContain('<Style id="status-detected"><LineStyle><color>ff2d2dff</color>');
    await exp('csv', 'p.csv', '350206001');
    const csv = readFileSync(out('p.csv'));
    expect([...csv.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const text = csv.toString('utf8');
    expect(text).toContain('图斑编号,监测月份,前时相,后时相');
    expect(text.trim().split('\r\n')).toHaveLength(4); // heading + the town's 3 patches
    expect(ogrinfo('-al', '-q', out('p.csv'))).toContain('殿前街道');
    // the Chinese columns say it in words, the code columns beside them keep the codes
    const header = text
      .replace(/^\uFEFF/, '')
      .split('\r\n')[0]
      .split(',');
    const rows = text
      .trim()
      .split('\r\n')
      .slice(1)
      .map((l) => l.split(','));
    const col = (alias: string) => rows.map((r) => r[header.indexOf(alias)]);
    expect(new Set(col('状态'))).toEqual(new Set(['待核查']));
    expect(new Set(col('状态代码'))).toEqual(new Set(['detected']));
    expect(col('类别').every((v) => ['生态红线', '耕地', '水域', '一般'].includes(v))).toBe(true);
    expect(col('挂牌督办')).toEqual(['否', '否', '否']);
    // measures to 0.01
    for (const alias of ['面积(平方米)', '面积(亩)', '占耕地(平方米)'])
      for (const v of col(alias)) expect(v, alias).toMatch(/^\d+(\.\d{1,2})?$/);
  });

  it('makes the CSV in the database cell for cell as the records are, the same streamed and as a file', async () => {
    // in a run of its own, so the other tests see the batch's patches as they are
    const edge = await freshRun(fixturesDir);
    try {
      await runBatch(edge.db, edge.config, '2024-03', '2024-02');
      await edgeCells(edge);
    } finally {
      await cleanup(edge.db, edge.config);
    }
  });

  /**
   * Cells at the edges of the rules: notes to neutralise and quote (the latest wins), text with commas and
   * quotes, halves to round, a missing confidence, deadlines overdue across the Spring Festival (its
   * holidays and make-up Sunday) and past the calendar's years, a code without words, a 回头看 judgement.
   */
  async function edgeCells(edge: Run): Promise<void> {
    const csvOut = join(edge.config.dataDir, 'whole.csv');
    const clerk = await createUser(edge.db, { username: 'stream-clerk', role: 'town', townCode: '350206001' });
    await addNote(edge.db, clerk, '350206-202403-0005', '=1+1, "引号"');
    await addNote(edge.db, clerk, '350206-202403-0002', 'two\r\nlines');
    await addNote(edge.db, clerk, '350206-202403-0002', '-2+3 最新');
    await edge
      .db('patch')
      .where({ code: '350206-202403-0001' })
      .update({
        town_name: '禾山,"街道"',
        grid_code: '@g1',
        area_m2: 0.125,
        farmland_m2: 1.005,
        ecological_m2: 2.675,
        water_m2: 1234.5678,
        mean_prob: null,
        status: 'dispatched',
        verify_due: '2024-02-08',
        escalated_at: new Date('2024-03-01T00:00:00Z'),
        violation: 'unheard_of',
        imagery_check: { month: '2024-04', result: 'gone', score: 0.125 },
      });
    await edge.db('patch').where({ code: '350206-202403-0004' }).update({
      status: 'rectifying',
      verification_result: 'illegal',
      violation: 'construction',
      measure: 'demolish',
      rectify_due: '2024-02-19',
      overdue_since: '2024-02-20',
    });
    await edge
      .db('patch')
      .where({ code: '350206-202403-0003' })
      .update({ status: 'dispatched', verify_due: '2031-01-06' });
    // and 3,000 more of 0005 (its note kept apart), so the lines come from the database in many pieces
    const columns = (
      await edge.db.raw(
        `select column_name as c from information_schema.columns
         where table_schema = current_schema() and table_name = 'patch' and column_name <> 'id'
           and is_generated = 'NEVER' order by ordinal_position`,
      )
    ).rows.map((r: { c: string }) => r.c);
    const copied = columns.map((c: string) =>
      c === 'code'
        ? `'350206-202403-' || (1000 + g)`
        : c === 'seq'
          ? '1000 + g'
          : c === 'latest_note' || c === 'latest_note_id'
            ? 'null'
            : `p.${c}`,
    );
    await edge.db.raw(
      `insert into patch (${columns.join(', ')}) select ${copied.join(', ')}
       from patch p, generate_series(1, 3000) g where p.code = '350206-202403-0005'`,
    );
    // the month is read in the order it is written (an index), not read whole and sorted: at 10 M patches
    // the sort took twice the time
    await edge.db.raw('analyze patch');
    const plan = (await csvPlan(edge.db, env, { month: '2024-03' })).join('\n');
    expect(plan).toMatch(/Index Scan using patch_month_town_code_idx on patch/);
    expect(plan).not.toMatch(/Sort/);
    for (const town of [undefined, '350206001', '350206002', '350206999']) {
      const expected = await referenceCsv(edge.db, env, '2024-03', town ?? null);
      await exportPatches(edge.db, env, { month: '2024-03', town, format: 'csv', outPath: csvOut, storageSrid: 4548 });
      expect(readFileSync(csvOut, 'utf8'), `town ${town}`).toBe(expected.toString('utf8'));
      const chunks: Buffer[] = [];
      const n = await streamCsv(edge.db, env, { month: '2024-03', town }, async (c) => {
        chunks.push(Buffer.from(c));
      });
      expect(Buffer.concat(chunks).equals(expected), `town ${town}`).toBe(true);
      expect(n).toBe(town === '350206999' ? 0 : town === '350206001' ? 3003 : town ? 2 : 3005);
    }
    const text = (await referenceCsv(edge.db, env, '2024-03')).toString('utf8');
    expect(text).toContain(`"'=1+1, ""引号"""\r\n`);
    expect(text).toContain(`,'-2+3 最新\r\n`);
    expect(text).toContain('"禾山,""街道"""');
    expect(text).not.toContain('two\r\nlines');
    // a client gone at the first bytes: its error comes back, the rest is read and dropped, the
    // connections answer as before
    const gone = new Error('the client went away');
    await expect(
      streamCsv(edge.db, env, { month: '2024-03' }, async () => {
        throw gone;
      }),
    ).rejects.toBe(gone);
    // a value with a line break never reaches the SQL text (the CLI's --town is not validated like the API's);
    // the refusal names it and leaves no file
    const odd = join(edge.config.dataDir, 'odd.csv');
    await expect(
      exportPatches(edge.db, env, { month: '2024-03', town: 'x\n1', format: 'csv', outPath: odd, storageSrid: 4548 }),
    ).rejects.toThrow(/town: a control character/);
    expect(existsSync(odd) || existsSync(`${odd}.partial`)).toBe(false);
    for (let i = 0; i < 3; i++) expect(await streamCsv(edge.db, env, { month: '2024-03' }, async () => {})).toBe(3005);
  }

  it('carries the latest note of a patch in 备注', async () => {
    const clerk = await createUser(run.db, { username: 'note-clerk', role: 'town', townCode: '350206001' });
    await addNote(run.db, clerk, '350206-202403-0003', '业主已承诺自行拆除');
    await exp('csv', 'notes.csv', '350206001');
    const lines = readFileSync(out('notes.csv'), 'utf8')
      .replace(/^\uFEFF/, '')
      .trim()
      .split('\r\n');
    const header = lines[0].split(',');
    const row = lines.find((l) => l.startsWith('350206-202403-0003'))!.split(',');
    expect(row[header.indexOf('备注')]).toBe('业主已承诺自行拆除');
  });

  it('writes a workbook with a sheet per town, frozen header and area totals', async () => {
    await exp('xlsx', 'p.xlsx');
    const info = ogrinfo(out('p.xlsx'));
    expect(info).toContain('殿前街道');
    expect(info).toContain('禾山街道');
    const sheet = ogrinfo('-al', '-q', out('p.xlsx'), '殿前街道');
    expect(sheet).toContain('合计');
    expect((sheet.match(/350206-202403-/g) ?? []).length).toBe(3);
    // read back as a register would: title row, filterable headings, dates as dates, landscape pages
    const { default: ExcelJS } = await import('exceljs');
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.readFile(out('p.xlsx'));
    const ws = wb.getWorksheet('殿前街道')!;
    expect(ws.getCell('A1').text).toMatch(/^图斑 2024-03 · 殿前街道 · 导出于 \d{4}-\d{2}-\d{2}$/);
    expect(ws.getRow(2).getCell(1).value).toBe('图斑编号');
    expect(ws.autoFilter).toBeTruthy();
    expect(ws.pageSetup.orientation).toBe('landscape');
    const verifyCol = FIELDS.findIndex((f) => f.name === 'after_dt') + 1;
    expect(ws.getRow(3).getCell(verifyCol).value).toBeInstanceOf(Date);
  });

  it('writes PDF verification sheets, one page per patch, with chips, QR code and blank verdict fields', async () => {
    await exp('pdf', 'p.pdf');
    expect(execFileSync('pdfinfo', [out('p.pdf')], { encoding: 'utf8' })).toMatch(/Pages:\s+5/);
    const text = execFileSync('pdftotext', ['-layout', out('p.pdf'), '-'], { encoding: 'utf8' });
    expect(text.split('两违图斑外业核查表')).toHaveLength(6);
    for (let i = 1; i <= 5; i++) expect(text).toContain(`350206-202403-000${i}`);
    expect(text).toContain('核查人');
    expect(text).toContain('前时相 2024-02-10');
    // Each page carries images: two chips, the overview and the QR code.
    const images = execFileSync('pdfimages', ['-list', out('p.pdf')], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .slice(2)
      .filter((l) => l.trim().split(/\s+/)[2] === 'image');
    expect(images.length).toBe(5 * 4);
    // the chips are JPEG, so a month of 300 sheets stays well under 30 MB
    const chips = images.filter((l) => l.trim().split(/\s+/)[8] === 'jpeg');
    expect(chips.length).toBe(5 * 3);
    const perPage = statSync(out('p.pdf')).size / 5;
    console.log(`PDF sheets: ${(perPage / 1024).toFixed(0)} KB a page`);
    expect(perPage).toBeLessThan(100 * 1024);
  });

  it("reads every sheet's chip plans in one statement, each as the chip's own query plans it", async () => {
    const { sheetPlans, patchChip } = await import('../export/patches.ts');
    const codes = [1, 2, 3, 4, 5].map((i) => `350206-202403-000${i}`);
    const plans = await sheetPlans(
      run.db,
      codes.map((code) => ({ code }) as never),
    );
    expect(plans.map((p) => p.record.code)).toEqual(codes);
    // the plan patchChip hands its renderer: one query for one chip
    const one = async (code: string, month: string, kind: 'detail' | 'overview', colour: string) => {
      let plan: unknown = null;
      await patchChip(run.db, async (p) => ((plan = p), Buffer.alloc(0)), code, month, kind, colour);
      return plan;
    };
    for (const p of plans) {
      const code = String(p.record.code);
      expect(p.before, code).toEqual(await one(code, '2024-02', 'detail', '#ffd400'));
      expect(p.after, code).toEqual(await one(code, '2024-03', 'detail', '#ff2020'));
      expect(p.overview, code).toEqual(await one(code, '2024-03', 'overview', '#ff2020'));
      // before and after from the two months' imagery
      expect(p.before!.tiles.length, code).toBeGreaterThan(0);
      expect(p.before!.tiles).not.toEqual(p.after!.tiles);
    }
    // a code without a patch: a sheet with no chips
    const [none] = await sheetPlans(run.db, [{ code: '350206-202403-9999' } as never]);
    expect([none.before, none.after, none.overview]).toEqual([null, null, null]);
  });

  it('refuses a PDF it cannot write with the file named, and leaves no half-written file', async () => {
    const { writePdf, findCjkFont } = await import('../export/write.pdf.ts');
    const { existsSync } = await import('node:fs');
    const bad = join(out('no-such-folder'), 'p.pdf');
    async function* sheets() {
      for (let i = 0; i < 3; i++)
        yield { record: { code: `C${i}` } as never, images: { before: null, after: null, overview: null } };
    }
    await expect(writePdf(sheets(), 't', findCjkFont(), bad)).rejects.toThrow(
      /no-such-folder\/p\.pdf: cannot write the PDF/,
    );
    // a sheet that fails half way: the error is the sheet's, and the partial file is removed
    const partial = out('partial.pdf');
    async function* failing() {
      yield { record: { code: 'C0' } as never, images: { before: null, after: null, overview: null } };
      throw new Error('chip source went away');
    }
    await expect(writePdf(failing(), 't', findCjkFont(), partial)).rejects.toThrow(/chip source went away/);
    expect(existsSync(partial)).toBe(false);
  });

  it('packs one folder per town with every format into a zip', async () => {
    await exp('zip', 'p.zip');
    const listing = execFileSync(
      'python3',
      ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', out('p.zip')],
      { encoding: 'utf8' },
    );
    for (const folder of ['350206001_殿前街道', '350206002_禾山街道']) {
      for (const ext of ['gpkg', 'geojson', 'kml', 'csv', 'xlsx', 'pdf'])
        expect(listing).toContain(`${folder}/图斑_2024-03_${folder.slice(0, 9)}.${ext}`);
      for (const ext of ['shp', 'shx', 'dbf', 'prj', 'cpg']) expect(listing).toContain(`${folder}/shp/patches.${ext}`);
    }
    expect(ogrinfo('-so', '-al', `/vsizip/${out('p.zip')}/350206002_禾山街道/图斑_2024-03_350206002.gpkg`)).toContain(
      'Feature Count: 2',
    );
  });

  it('serves exports through the API scoped to the town user', async () => {
    await createUser(run.db, { username: 'hs', role: 'town', townCode: '350206002' });
    const { token } = await issueToken(run.db, 'hs');
    const app = await buildServer({ db: run.db, config: run.config, env });
    try {
      const gj = await app.inject({
        method: 'GET',
        url: '/api/export?month=2024-03&format=geojson',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(gj.statusCode).toBe(200);
      expect(
        JSON.parse(gj.body).features.map((f: { properties: { town_code: string } }) => f.properties.town_code),
      ).toEqual(['350206002', '350206002']);
      const other = await app.inject({
        method: 'GET',
        url: '/api/export?month=2024-03&format=geojson&town=350206001',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(JSON.parse(other.body).features).toHaveLength(0);
      const shp = await app.inject({
        method: 'GET',
        url: '/api/export?month=2024-03&format=shp',
        headers: { authorization: `Bearer ${token}` },
      });
      expect(shp.headers['content-type']).toBe('application/zip');
      expect([...shp.rawPayload.subarray(0, 2)]).toEqual([0x50, 0x4b]);
      expect(
        (
          await app.inject({
            method: 'GET',
            url: '/api/export?month=2024-03&format=dwg',
            headers: { authorization: `Bearer ${token}` },
          })
        ).statusCode,
      ).toBe(400);
    } finally {
      await app.close();
    }
  });
});
