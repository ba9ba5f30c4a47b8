import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { FIELDS } from '../export/fields.ts';
import { buildServer } from '../server/app.ts';
import { exportPatches } from '../export/patches.ts';
import { createUser, issueToken } from '../store/users.ts';
import { testWorkflowEnv } from './helpers/api.ts';
import { freshRun, type Run } from './helpers/run.ts';
import { cleanup } from './helpers/services.ts';

const ogrinfo = (...args: string[]) => execFileSync('ogrinfo', args, { encoding: 'utf8' });

/**
 * Empty lists in every format (issue 30): a month without patches — the 零增长 the programme aims for —
 * gives a valid file in each format with its fields and 0 features, a PDF whose one page says there is
 * nothing to verify, and a package with a folder of those files for every town. Read back by GDAL,
 * openpyxl and poppler.
 */
describe('exports of a month without patches', () => {
  const fixturesDir = inject('fixturesDir');
  let run: Run;
  const env = testWorkflowEnv(() => '2024-05-20');
  const out = (name: string) => join(run.config.dataDir, name);
  const exp = (format: string, name: string, town?: string) =>
    exportPatches(run.db, env, { month: '2024-05', town, format, outPath: out(name), storageSrid: 4548 });

  beforeAll(async () => {
    run = await freshRun(fixturesDir); // the fixture layers and imagery, no batch: no patches in any month
  });
  afterAll(async () => cleanup(run.db, run.config));

  it('writes a GeoPackage and a Shapefile with every field and no feature', async () => {
    expect((await exp('gpkg', 'e.gpkg')).count).toBe(0);
    const gpkg = ogrinfo('-so', '-al', out('e.gpkg'));
    expect(gpkg).toContain('Feature Count: 0');
    expect(gpkg).toContain('CGCS2000 / 3-degree Gauss-Kruger CM 117E');
    for (const f of FIELDS) expect(gpkg, f.name).toMatch(new RegExp(`\\n${f.name}: `));
    // the Chinese aliases too
    expect(
      ogrinfo('-q', out('e.gpkg'), '-sql', "SELECT name FROM gpkg_data_columns WHERE column_name = 'code'"),
    ).toContain('图斑编号');
    const shp = await exp('shp', 'e-shp', '350206001');
    expect(shp.files.map((f) => f.split('/').pop()).sort((a, b) => String(a).localeCompare(String(b)))).toEqual([
      'patches.cpg',
      'patches.dbf',
      'patches.prj',
      'patches.shp',
      'patches.shx',
    ]);
    const s = ogrinfo('-so', '-al', join(out('e-shp'), 'patches.shp'));
    expect(s).toContain('Feature Count: 0');
    expect(s).toMatch(/\ncode: String/);
  });

  it('writes GeoJSON, KML, CSV and XLSX with their fields and no row', async () => {
    await exp('geojson', 'e.geojson');
    expect(JSON.parse(readFileSync(out('e.geojson'), 'utf8'))).toEqual({ type: 'FeatureCollection', features: [] });
    expect(ogrinfo('-so', '-al', out('e.geojson'))).toContain('Feature Count: 0');
    await exp('kml', 'e.kml');
    expect(ogrinfo('-so', '-al', out('e.kml'))).toContain('Feature Count: 0');
    await exp('csv', 'e.csv');
    const csv = readFileSync(out('e.csv'), 'utf8').replace(/^\uFEFF/, '');
    expect(csv.trim().split(/\r?\n/)).toEqual([FIELDS.map((f) => f.alias).join(',')]);
    await exp('xlsx', 'e.xlsx');
    const sheets = execFileSync(
      '/usr/bin/python3',
      [
        '-c',
        'import sys, json, openpyxl; wb = openpyxl.load_workbook(sys.argv[1]); print(json.dumps({ws.title: [[c.value for c in r] for r in ws.iter_rows()] for ws in wb.worksheets}, ensure_ascii=False))',
        out('e.xlsx'),
      ],
      { encoding: 'utf8' },
    );
    const book = JSON.parse(sheets) as Record<string, unknown[][]>;
    // one sheet: its title row, the headings, and the totals row at 0, no patch between
    const [[name, rows]] = Object.entries(book);
    expect(name).toBe('无图斑');
    expect(String(rows[0][0])).toContain('2024-05');
    expect(rows[1]).toEqual(FIELDS.map((f) => f.alias));
    expect(rows.slice(2).map((r) => r[0])).toEqual(['合计']);
  });

  it('writes a PDF of one page that says there is nothing to verify', async () => {
    await exp('pdf', 'e.pdf', '350206002');
    expect(execFileSync('pdfinfo', [out('e.pdf')], { encoding: 'utf8' })).toMatch(/Pages:\s+1\n/);
    const text = execFileSync('pdftotext', [out('e.pdf'), '-'], { encoding: 'utf8' });
    expect(text).toContain('没有需要外业核查的图斑');
    expect(text).toContain('2024-05');
  });

  it('packs a folder for every town, each with every format, and serves them all through the API', async () => {
    await exp('zip', 'e.zip');
    const listing = execFileSync(
      'python3',
      ['-c', 'import sys, zipfile; print("\\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))', out('e.zip')],
      { encoding: 'utf8' },
    );
    for (const folder of ['350206001_殿前街道', '350206002_禾山街道']) {
      for (const ext of ['gpkg', 'geojson', 'kml', 'csv', 'xlsx', 'pdf'])
        expect(listing).toContain(`${folder}/图斑_2024-05_${folder.slice(0, 9)}.${ext}`);
      for (const ext of ['shp', 'shx', 'dbf', 'prj', 'cpg']) expect(listing).toContain(`${folder}/shp/patches.${ext}`);
    }
    expect(ogrinfo('-so', '-al', `/vsizip/${out('e.zip')}/350206001_殿前街道/图斑_2024-05_350206001.gpkg`)).toContain(
      'Feature Count: 0',
    );

    await createUser(run.db, { username: 'hs', role: 'town', townCode: '350206002' });
    const { token } = await issueToken(run.db, 'hs');
    const app = await buildServer({ db: run.db, config: run.config, env });
    try {
      for (const format of ['gpkg', 'shp', 'geojson', 'kml', 'csv', 'xlsx', 'pdf', 'zip']) {
        const r = await app.inject({
          method: 'GET',
          url: `/api/export?month=2024-05&format=${format}`,
          headers: { authorization: `Bearer ${token}` },
        });
        expect(r.statusCode, `${format}: ${r.body.slice(0, 200)}`).toBe(200);
        expect(r.rawPayload.length, format).toBeGreaterThan(0);
      }
    } finally {
      await app.close();
    }
  });
});
