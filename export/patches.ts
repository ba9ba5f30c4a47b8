import { say } from '../i18n/say.ts';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { findCjkFont } from './fonts.ts';
import { runPdfThread } from './pdf.run.ts';
import { type ChipPlan, type SheetPhoto, type SheetPlan } from './sheets.ts';
import { zipFiles } from './zip.ts';
import { safeName } from './names.ts';
import type { BandStretch } from '../pipeline/raster.normalise.ts';
import type { Db } from '../store/db.ts';
import { toRecord, type ExportRecord } from './fields.ts';
import { writeWithOgr } from './write.ogr.ts';
import { EXPORT_FORMATS, type ExportFormat } from './formats.ts';
import { csvCell, csvHead, toGeoJson, toKml } from './write.text.ts';
import { BadInputError } from '../core/errors.ts';
import { eachText, explainText, runSql, type SqlLiteral } from '../store/sql.ts';
import type { User } from '../store/users.ts';
import type { WorkflowEnv } from '../workflow/env.ts';
import { scopeTown } from '../store/patch.row.ts';
import { readObject, writeObject } from '../store/objects.ts';
import { DEFAULT_LOCALE, LOCALES, label } from '../i18n/index.ts';
import { addDays, coveredUntil, DATE_MIN, isWorkingDay } from '../workflow/calendar.ts';
import { isRemote } from '../pipeline/io/byte.source.ts';

async function exportRecords(
  db: Db,
  env: WorkflowEnv,
  month: string,
  town: string | null,
  user: User | null,
  states: readonly string[] | null = null,
  withGeometry = true,
): Promise<ExportRecord[]> {
  const rows = await runSql<Record<string, unknown>>(
    db,
    'export/patches',
    exportParams(month, town, user, states, withGeometry),
  );
  const today = env.today();
  return rows.map((r) => toRecord(r, env.calendar, today));
}

function exportParams(
  month: string,
  town: string | null,
  user: User | null,
  states: readonly string[] | null,
  withGeometry: boolean,
) {
  return {
    month,
    town,
    with_geom: withGeometry,
    scope_town: user ? scopeTown(user) : null,
    states: states ? `{${states.join(',')}}` : null,
  };
}

/** The records' patch codes, in their order. */
const codesOf = (records: ExportRecord[]) => records.map((r) => String(r.code));

/** Which patches a CSV holds: those exportPatches would list, or (a town's package) the codes given. */
interface CsvFilter {
  month: string;
  town?: string | null;
  user?: User | null;
  states?: readonly string[] | null;
  codes?: readonly string[] | null;
  signal?: AbortSignal;
}

/**
 * The month's patch list as CSV, handed to `write` as it is read: the headings, then the lines, which
 * the database makes (sql/export/patches.csv.sql: a province's month, 277,777 patches and 57 MB, is never
 * held whole, and Node only passes the bytes on). Nothing is written before the first lines or the end:
 * a failure to read (the database gone) is thrown before the first byte. Downloads, the CLI's files and
 * the towns' packages are all made here. Returns how many patches were written.
 */
export async function streamCsv(
  db: Db,
  env: WorkflowEnv,
  opts: CsvFilter,
  write: (chunk: Buffer | string) => Promise<void>,
): Promise<number> {
  let begun = false;
  const count = await eachText(
    db,
    'export/patches.csv',
    csvParams(env, opts),
    async (lines) => {
      if (!begun) await write(csvHead());
      begun = true;
      await write(lines);
    },
    { signal: opts.signal, indexOrder: readInOrder(opts) },
  );
  if (!begun) await write(csvHead());
  return count;
}

/**
 * A month (or a town's month) is read in the order of patch_month_town_code_idx; a package's codes are
 * looked up one by one and sorted.
 */
const readInOrder = (opts: CsvFilter) => !opts.codes;

/** The plan streamCsv would read these patches by, as EXPLAIN's lines (scripts/bench-scale.ts prints it). */
export async function csvPlan(db: Db, env: WorkflowEnv, opts: CsvFilter): Promise<string[]> {
  return explainText(db, 'export/patches.csv', csvParams(env, opts), { indexOrder: readInOrder(opts) });
}

/**
 * The CSV as a file at `outPath`: written beside it and moved there whole, so a read that fails midway
 * leaves no file that looks complete (nor replaces a good one). A path that cannot be written is refused
 * before the query.
 */
async function writeCsv(db: Db, env: WorkflowEnv, opts: CsvFilter, outPath: string): Promise<number> {
  const partial = `${outPath}.partial`;
  const fd = openSync(partial, 'w');
  let count: number;
  try {
    count = await streamCsv(db, env, opts, async (chunk) => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
    });
  } catch (err) {
    closeSync(fd);
    rmSync(partial, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(partial, outPath);
  return count;
}

/** Text as a PostgreSQL array literal ({"a","b"}). */
const textArray = (xs: readonly string[]) => `{${xs.map((x) => `"${x.replace(/["\\]/g, '\\$&')}"`).join(',')}}`;

/**
 * The code groups whose words the CSV writes, and whether the code itself follows the word (status: 待核查 and
 * detected).
 */
const LABEL_GROUPS = {
  relation: false,
  class: true,
  status: true,
  result: true,
  violation: false,
  measure: false,
  lookback: true,
  source: false,
} as const;
/**
 * Each group's cells as {code: "word," or "word,code,"}, the query's l_<group> parameters (made once): the
 * commas come with the cells, so a line is made of half as many pieces.
 */
let labelParams: Record<string, string> | null = null;

/** Working days late by days before today, per calendar (the last day it was made for). */
const lateDays = new WeakMap<WorkflowEnv['calendar'], { today: string; late: string }>();

function csvParams(env: WorkflowEnv, f: CsvFilter): Record<string, SqlLiteral> {
  const today = env.today();
  const cal = env.calendar;
  let late = lateDays.get(cal);
  if (late?.today !== today) {
    // element k: working days in (today − k, today] (workingDaysBetween's count, a day at a time), back to
    // the first date tuban accepts
    const counts: number[] = [];
    let n = 0;
    for (let d = today; d > DATE_MIN; d = addDays(d, -1)) {
      if (isWorkingDay(cal, d)) n++;
      counts.push(n);
    }
    late = { today, late: `{${counts.join(',')}}` };
    lateDays.set(cal, late);
  }
  labelParams ??= Object.fromEntries(
    (Object.keys(LABEL_GROUPS) as (keyof typeof LABEL_GROUPS)[]).map((g) => [
      `l_${g}`,
      JSON.stringify(
        Object.fromEntries(
          Object.keys(LOCALES[DEFAULT_LOCALE][g]).map((c) => [
            c,
            `${csvCell(label(g, c))},${LABEL_GROUPS[g] ? `${csvCell(c)},` : ''}`,
          ]),
        ),
      ),
    ]),
  );
  return {
    ...exportParams(f.month, f.town ?? null, f.user ?? null, f.states ?? null, false),
    codes: f.codes ? textArray(f.codes) : null,
    today,
    covered: coveredUntil(cal),
    late: late.late,
    ...labelParams,
  };
}

/**
 * exportPatches to a local path or to an s3://bucket/key location: written in a temporary folder,
 * then put there (a shapefile's files under the key as a prefix). Returns where the files went.
 */
export async function exportPatchesTo(
  db: Db,
  env: WorkflowEnv,
  opts: Parameters<typeof exportPatches>[2],
): Promise<{ files: string[]; count: number }> {
  if (!isRemote(opts.outPath)) return exportPatches(db, env, opts);
  if (!/^s3:\/\/[^/]+\/./i.test(opts.outPath))
    throw new BadInputError('bad_output', say('export_output', { file: opts.outPath }), { file: opts.outPath });
  const dir = mkdtempSync(join(tmpdir(), 'tuban-export-'));
  try {
    const name = basename(new URL(opts.outPath).pathname) || 'export';
    const r = await exportPatches(db, env, { ...opts, outPath: join(dir, name) });
    const files: string[] = [];
    for (const f of r.files) {
      const at = opts.format === 'shp' ? `${opts.outPath.replace(/\/+$/, '')}/${basename(f)}` : opts.outPath;
      await writeObject(at, readFileSync(f));
      files.push(at);
    }
    return { files, count: r.count };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Write the month's patch list (one town, or all the user may see) in a format. GPKG is one
 * file; SHP is a folder with .shp/.shx/.dbf/.prj/.cpg; zip holds a folder per town with all of them.
 */
export async function exportPatches(
  db: Db,
  env: WorkflowEnv,
  opts: {
    month: string;
    town?: string | null;
    format: string;
    outPath: string;
    user?: User | null;
    storageSrid: number;
    fontPath?: string;
    signal?: AbortSignal;
    /** Only patches in these states (null: all). */
    states?: readonly string[] | null;
  },
): Promise<{ files: string[]; count: number }> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(opts.format))
    throw new BadInputError(
      'bad_format',
      say('export_format', { format: opts.format, formats: EXPORT_FORMATS.join(', ') }),
    );
  const csv: CsvFilter = {
    month: opts.month,
    town: opts.town ?? null,
    user: opts.user ?? null,
    states: opts.states ?? null,
    signal: opts.signal,
  };
  if (opts.format === 'csv') return { files: [opts.outPath], count: await writeCsv(db, env, csv, opts.outPath) };
  if (opts.format === 'zip') return zipExport(db, env, csv, opts);
  // outlines only for the files that draw them (a spreadsheet of a province's month need not parse 28,000)
  const records = await exportRecords(
    db,
    env,
    opts.month,
    opts.town ?? null,
    opts.user ?? null,
    opts.states ?? null,
    !['xlsx', 'pdf'].includes(opts.format),
  );
  const files = await writeFormat(writeTarget(db, env, opts), records, opts.format as MadeFromRecords, opts.outPath);
  return { files, count: records.length };
}

/**
 * The towns' packages, zipped. The records every file is made from, each town's CSV (which the database
 * writes), the list of stamped photos and the plans of the sheets' imagery chips (which tiles, the outline
 * drawn) are read in one snapshot, so a patch edited, moved or photographed meanwhile is the same in a
 * package's CSV as in its GeoPackage, sheets and photo folder; the files are made from what was read after
 * it (the chips cut from the imagery files the plans name).
 */
async function zipExport(
  db: Db,
  env: WorkflowEnv,
  csv: CsvFilter,
  opts: Parameters<typeof exportPatches>[2],
): Promise<{ files: string[]; count: number }> {
  const tmp = mkdtempSync(join(tmpdir(), 'tuban-zip-'));
  try {
    const { records, folders, photos, plans } = await db.transaction(
      async (trx) => {
        const records = await exportRecords(trx, env, opts.month, opts.town ?? null, opts.user ?? null, opts.states);
        const folders = packageFolders(
          records,
          await packageTowns(trx, opts.town ?? null, opts.user ?? null),
          opts.month,
          tmp,
        );
        for (const f of folders) await writeCsv(trx, env, { ...csv, codes: codesOf(f.records) }, f.csvPath);
        const photos = await stampedPhotos(trx, codesOf(records));
        const plans = new Map(
          (await sheetPlans(trx, records, photos, opts.signal)).map((p) => [String(p.record.code), p]),
        );
        return { records, folders, photos, plans };
      },
      { isolationLevel: 'repeatable read', readOnly: true },
    );
    const packed = await townPackages({ ...writeTarget(db, env, opts), plans }, folders, photos, opts);
    return { files: [packed], count: records.length };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Where and how an export's files are written (a package's folders retitle it per town). */
function writeTarget(db: Db, env: WorkflowEnv, opts: Parameters<typeof exportPatches>[2]): WriteTarget {
  return {
    db,
    env,
    storageSrid: opts.storageSrid,
    fontPath: opts.fontPath,
    title: `图斑 ${opts.month}${opts.town ? ` ${opts.town}` : ''}`,
    signal: opts.signal,
  };
}

/** The formats made in Node from loaded records (the CSV is written by the database, a zip holds them all). */
type MadeFromRecords = Exclude<ExportFormat, 'zip' | 'csv'>;

interface WriteTarget {
  db: Db;
  env: WorkflowEnv;
  storageSrid: number;
  fontPath?: string;
  title: string;
  /** Stops the work between sheets, files and towns (a client that went away, a time limit). */
  signal?: AbortSignal;
  /** The sheets' plans by patch code, read in a package's snapshot; else the sheets read their own. */
  plans?: Map<string, SheetPlan>;
}

/** Records already loaded → one file (or a Shapefile folder) in a format; returns the written paths. */
async function writeFormat(
  t: WriteTarget,
  records: ExportRecord[],
  format: MadeFromRecords,
  outPath: string,
): Promise<string[]> {
  t.signal?.throwIfAborted();
  switch (format) {
    case 'gpkg':
      return writeWithOgr('gpkg', records, t.storageSrid, outPath, t.signal);
    case 'shp':
      mkdirSync(outPath, { recursive: true });
      return writeWithOgr('shp', records, t.storageSrid, outPath, t.signal);
    case 'geojson':
      writeFileSync(outPath, toGeoJson(records));
      break;
    case 'kml':
      writeFileSync(outPath, toKml(records, t.title));
      break;
    case 'xlsx':
      // exceljs takes half a second to load: only when a spreadsheet is asked for
      writeFileSync(
        outPath,
        await (await import('../export/write.xlsx.ts')).toXlsx(records, t.env.calendar, t.env.today(), t.title),
      );
      break;
    case 'pdf':
      await writeSheets(t, records, outPath);
      break;
  }
  return [outPath];
}

/**
 * A PNG chip of a month's imagery around a patch with its outline drawn: `detail` fits the patch
 * with 15 m around it at 0.5 m; `overview` is 300 m across at 2 m. Null when no imagery covers it.
 */
export async function patchChip(
  db: Db,
  render: (plan: ChipPlan) => Promise<Buffer>,
  code: string,
  month: string,
  kind: 'detail' | 'overview',
  colour: string,
): Promise<Buffer | null> {
  const plan = await chipPlan(db, code, month, kind, colour);
  return plan ? render(plan) : null;
}

/** How far around the patch each kind of chip reaches (m): the detail fits the patch, the overview shows 300 m. */
const CHIP_MARGIN_M = { detail: 15, overview: 150 } as const;

/** A chip tile as export/chip_tiles and export/sheet_chip_tiles give it. */
interface ChipTileRow {
  path: string;
  stretch: BandStretch | null;
  geom: { type: string; coordinates: unknown };
  centre: { coordinates: number[] };
}

async function chipPlan(
  db: Db,
  code: string,
  month: string,
  kind: 'detail' | 'overview',
  colour: string,
): Promise<ChipPlan | null> {
  const rows = await runSql<ChipTileRow>(db, 'export/chip_tiles', { code, month, margin_m: CHIP_MARGIN_M[kind] });
  return planOf(rows, kind, colour);
}

/** A chip's plan from its tiles (all with the patch in their CRS), or null without any. */
function planOf(rows: ChipTileRow[], kind: 'detail' | 'overview', colour: string): ChipPlan | null {
  if (rows.length === 0) return null;
  const margin = CHIP_MARGIN_M[kind];
  const polys = (
    rows[0].geom.type === 'Polygon' ? [rows[0].geom.coordinates] : rows[0].geom.coordinates
  ) as number[][][][];
  const pts = polys.flat(2);
  const [cx, cy] = rows[0].centre.coordinates;
  const half =
    kind === 'detail'
      ? Math.max(...pts.map((p) => Math.max(Math.abs(p[0] - cx), Math.abs(p[1] - cy)))) + margin
      : margin;
  return {
    tiles: rows.map((r) => ({ path: r.path, stretch: r.stretch })),
    boundsWorld: [cx - half, cy - half, cx + half, cy + half],
    gsdM: kind === 'detail' ? 0.5 : 2,
    outline: polys,
    colour,
    widthPx: kind === 'detail' ? 510 : 280,
  };
}

/** Patches whose sheets' chip tiles one statement reads (a text array of this many codes, well under a megabyte). */
const PLAN_SLICE = 2000;

/**
 * The chips' plans for every sheet, with their photos: the tiles of all three chips of PLAN_SLICE patches at a
 * time (sql/export/sheet_chip_tiles.sql), not a query per chip.
 */
export async function sheetPlans(
  db: Db,
  records: ExportRecord[],
  photos: Map<string, CasePhoto[]> = new Map(),
  signal?: AbortSignal,
): Promise<SheetPlan[]> {
  const plans: SheetPlan[] = [];
  for (let i = 0; i < records.length; i += PLAN_SLICE) {
    signal?.throwIfAborted();
    const slice = records.slice(i, i + PLAN_SLICE);
    const tiles = new Map<string, ChipTileRow[]>();
    for (const row of await runSql<ChipTileRow & { code: string; chip: string }>(db, 'export/sheet_chip_tiles', {
      codes: textArray(codesOf(slice)),
      detail_m: CHIP_MARGIN_M.detail,
      overview_m: CHIP_MARGIN_M.overview,
    })) {
      const key = `${row.code} ${row.chip}`;
      const list = tiles.get(key) ?? [];
      list.push(row);
      tiles.set(key, list);
    }
    for (const r of slice) {
      const code = String(r.code);
      const of = (chip: string) => tiles.get(`${code} ${chip}`) ?? [];
      plans.push({
        record: r,
        before: planOf(of('before'), 'detail', '#ffd400'),
        after: planOf(of('after'), 'detail', '#ff2020'),
        overview: planOf(of('overview'), 'overview', '#ff2020'),
        photos: (photos.get(code) ?? []).map((p) => p.sheet),
      });
    }
  }
  return plans;
}

/** A case's stamped photos as exports show them: verification first, each with its caption and a file name. */
interface CasePhoto {
  sheet: SheetPhoto;
  /** Its name in a town package: code, stage, number. */
  name: string;
}

/** The stamped photos of these patches, by code (originals stay in the store, named by their SHA-256). */
async function stampedPhotos(db: Db, codes: string[]): Promise<Map<string, CasePhoto[]>> {
  const by = new Map<string, CasePhoto[]>();
  const rows = [];
  // in slices: a province's month is more codes than one statement may bind
  for (let i = 0; i < codes.length; i += 5000)
    rows.push(
      ...(await db('evidence as e')
        .join('patch as p', 'p.id', 'e.patch_id')
        .whereIn('p.code', codes.slice(i, i + 5000))
        .whereNotNull('e.stamped_as')
        .orderBy([{ column: 'p.code' }, { column: 'e.stage', order: 'desc' }, { column: 'e.id' }])
        .select('p.code', 'e.stage', 'e.stamped_as', 'e.flags')),
    );
  for (const r of rows) {
    const list = by.get(r.code) ?? [];
    const stage = label('stage', r.stage);
    const n = list.filter((x) => x.name.includes(`_${stage}_`)).length + 1;
    const flags = (r.flags as string[]).map((f) => label('photo_flag', f));
    list.push({
      sheet: { location: r.stamped_as, caption: `${stage}照片 ${n}${flags.length ? `（${flags.join('、')}）` : ''}` },
      name: `${r.code}_${stage}_${n}.jpg`,
    });
    by.set(r.code, list);
  }
  return by;
}

/**
 * Verification sheets: the plans come from the database here; cutting the chips and writing the
 * PDF (image decoding, compression, layout: the heavy part) happen in a worker thread, so the
 * server keeps answering while it runs; an abort terminates the thread at once.
 */
async function writeSheets(t: WriteTarget, records: ExportRecord[], outPath: string): Promise<void> {
  const plans = t.plans
    ? records.map((r) => t.plans!.get(String(r.code))!)
    : await sheetPlans(t.db, records, await stampedPhotos(t.db, codesOf(records)), t.signal);
  const font = findCjkFont(t.fontPath);
  await runPdfThread({ plans, title: t.title, font, outPath }, t.signal);
}

/**
 * The towns a package holds: the one asked for, the user's own for a town user, else every town of the
 * town layer. A town without patches gets its folder too, with every file empty: 零增长 is a result.
 */
async function packageTowns(db: Db, town: string | null, user: User | null): Promise<{ code: string; name: string }[]> {
  const scope = user ? scopeTown(user) : null;
  return db('reference_feature')
    .where({ kind: 'town' })
    .modify((q) => {
      if (town) void q.andWhere({ code: town });
      if (scope) void q.andWhere({ code: scope });
    })
    .distinct('code', 'name')
    .orderBy('code');
}

/** A town's folder in the package: its patches, where its files are made, and its CSV's path there. */
interface PackageFolder {
  town: string;
  name: string;
  /** The folder's name in the zip (made safe). */
  folder: string;
  dir: string;
  csvPath: string;
  records: ExportRecord[];
}

/** The package's folders under `tmp`: the town layer's towns, and any town (or none: outside every town) a patch names besides. */
function packageFolders(
  records: ExportRecord[],
  layerTowns: { code: string; name: string }[],
  month: string,
  tmp: string,
): PackageFolder[] {
  // each patch to its town's list in one pass (a province's month: 277,777 patches in 300 towns)
  const towns = [...layerTowns];
  const byTown = new Map<string, ExportRecord[]>(towns.map((t) => [t.code, []]));
  for (const r of records) {
    const code = r.town_code === null ? '' : String(r.town_code);
    let mine = byTown.get(code);
    if (!mine) {
      towns.push({ code, name: r.town === null ? '' : String(r.town) });
      byTown.set(code, (mine = []));
    }
    mine.push(r);
  }
  return towns.map(({ code: town, name }, i) => {
    const dir = join(tmp, String(i + 1));
    mkdirSync(dir, { recursive: true });
    return {
      town,
      name,
      // town codes and names come from the imported town layer: they name zip entries only once made safe,
      // and the files on disk are named by position
      folder: safeName(town ? `${town}_${name || town}` : '镇街外', `town-${i + 1}`),
      dir,
      csvPath: join(dir, fileName(month, town, 'csv')),
      records: byTown.get(town)!,
    };
  });
}

const fileName = (month: string, town: string, format: string) => safeName(`图斑_${month}_${town || 'none'}.${format}`);

/** One folder per town with every format, zipped: what a town office receives each month (its CSV already written). */
async function townPackages(
  t: WriteTarget,
  folders: PackageFolder[],
  photos: Map<string, CasePhoto[]>,
  { month, outPath }: { month: string; outPath: string },
): Promise<string> {
  const entries: { path: string; name: string }[] = [];
  for (const { town, name, folder, dir, csvPath, records: mine } of folders) {
    for (const format of ['gpkg', 'shp', 'geojson', 'kml', 'csv', 'xlsx', 'pdf'] as const) {
      const files =
        format === 'csv'
          ? [csvPath]
          : await writeFormat(
              { ...t, title: `图斑 ${month} ${name || town || '镇街外'}` },
              mine,
              format,
              format === 'shp' ? join(dir, 'shp') : join(dir, fileName(month, town, format)),
            );
      for (const f of files)
        entries.push({ path: f, name: `${folder}/${format === 'shp' ? `shp/${basename(f)}` : basename(f)}` });
    }
    // the stamped site photos, as the sheets show them (the list read in the package's snapshot), named by
    // patch, stage and number
    for (const r of mine)
      for (const p of photos.get(String(r.code)) ?? []) {
        const path = join(dir, `photo-${entries.length}.jpg`);
        writeFileSync(path, await readObject(p.sheet.location));
        entries.push({ path, name: `${folder}/照片/${safeName(p.name, 'photo.jpg')}` });
      }
  }
  await zipFiles(entries, outPath);
  return outPath;
}
