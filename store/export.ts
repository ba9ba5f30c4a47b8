import { mkdirSync, writeFileSync } from 'node:fs';
import type { Knex } from 'knex';
import { toRecord, type ExportRecord } from '../export/fields.ts';
import { writeWithOgr } from '../export/write.ogr.ts';
import { toCsv, toGeoJson, toKml } from '../export/write.text.ts';
import { toXlsx } from '../export/write.xlsx.ts';
import { BadInputError } from '../pipeline/errors.ts';
import { runSql } from './sql.ts';
import type { User } from './users.ts';
import { scopeTown, type WorkflowEnv } from './workflow.ts';

export const EXPORT_FORMATS = ['gpkg', 'shp', 'geojson', 'kml', 'csv', 'xlsx'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export async function exportRecords(db: Knex, env: WorkflowEnv, month: string, town: string | null, user: User | null): Promise<ExportRecord[]> {
  const rows = await runSql<Record<string, unknown>>(db, 'export/patches', { month, town, scope_town: user ? scopeTown(user) : null });
  const today = env.today();
  return rows.map((r) => toRecord(r, env.calendar, today));
}

/**
 * Write the month's patch list (one town, or all the user may see) in a format. GPKG is one
 * file; SHP is a folder with .shp/.shx/.dbf/.prj/.cpg; the others are single files.
 */
export async function exportPatches(db: Knex, env: WorkflowEnv, opts: { month: string; town?: string | null; format: string; outPath: string; user?: User | null; storageSrid: number }): Promise<{ files: string[]; count: number }> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(opts.format)) throw new BadInputError('bad_format', `--format "${opts.format}" is not one of ${EXPORT_FORMATS.join(', ')}`);
  const records = await exportRecords(db, env, opts.month, opts.town ?? null, opts.user ?? null);
  const title = `图斑 ${opts.month}${opts.town ? ` ${opts.town}` : ''}`;
  const format = opts.format as ExportFormat;
  switch (format) {
    case 'gpkg':
      return { files: await writeWithOgr('gpkg', records, opts.storageSrid, opts.outPath), count: records.length };
    case 'shp':
      mkdirSync(opts.outPath, { recursive: true });
      return { files: await writeWithOgr('shp', records, opts.storageSrid, opts.outPath), count: records.length };
    case 'geojson':
      writeFileSync(opts.outPath, toGeoJson(records));
      break;
    case 'kml':
      writeFileSync(opts.outPath, toKml(records, title));
      break;
    case 'csv':
      writeFileSync(opts.outPath, toCsv(records));
      break;
    case 'xlsx':
      writeFileSync(opts.outPath, await toXlsx(records, env.calendar, env.today(), title));
      break;
  }
  return { files: [opts.outPath], count: records.length };
}
