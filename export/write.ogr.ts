import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { BadInputError } from '../core/errors.ts';
import { FIELDS, type ExportRecord } from './fields.ts';
import { toStorageGeoJson } from './write.text.ts';

const run = promisify(execFile);

/**
 * The ogr2ogr command line that turns the storage-CRS GeoJSON into a GeoPackage or a Shapefile —
 * as data, so it can be logged and tested. GDAL writes the .prj / gpkg_spatial_ref_sys entry from
 * the EPSG code, and for a Shapefile a .cpg declaring UTF-8 so QGIS and ArcGIS read the Chinese.
 */
function ogrCommand(
  format: 'gpkg' | 'shp',
  input: string,
  output: string,
  srid: number,
  layer: string,
  empty = false,
): string[] {
  // every column gets its declared type whatever the month's values (ogr2ogr would otherwise guess:
  // a farmland column of whole numbers became Integer one month and Real the next)
  const sqlType = { string: 'character(254)', real: 'float', integer: 'integer' } as const;
  const select = FIELDS.map((f) => `CAST("${f.name}" AS ${sqlType[f.type]}) AS "${f.name}"`).join(', ');
  const source = basename(input).replace(/\.[^.]*$/, '');
  const common = [
    '-a_srs',
    `EPSG:${srid}`,
    '-nln',
    layer,
    '-nlt',
    'MULTIPOLYGON',
    '-dialect',
    'OGRSQL',
    '-sql',
    // an empty list: ogr2ogr takes the fields from a placeholder row that the WHERE leaves out
    `SELECT ${select} FROM "${source}"${empty ? ' WHERE 1 = 0' : ''}`,
    output,
    input,
  ];
  if (format === 'gpkg') return ['-f', 'GPKG', '-overwrite', ...common];
  return ['-f', 'ESRI Shapefile', '-lco', 'ENCODING=UTF-8', '-overwrite', ...common];
}

/** Writes a GeoPackage file, or a Shapefile's files into `outDir`; returns the written paths. */
export async function writeWithOgr(
  format: 'gpkg' | 'shp',
  records: ExportRecord[],
  srid: number,
  outPath: string,
  signal?: AbortSignal,
  layer = 'patches',
): Promise<string[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'tuban-export-'));
  try {
    const input = join(tmp, 'in.geojson');
    writeFileSync(input, toStorageGeoJson(records, srid));
    try {
      await run('ogr2ogr', ogrCommand(format, input, outPath, srid, layer, records.length === 0), {
        timeout: 120_000,
        signal,
      });
    } catch (err) {
      signal?.throwIfAborted();
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT')
        throw new BadInputError(
          'gdal_missing',
          `writing ${format.toUpperCase()} needs GDAL's ogr2ogr (Debian: apt-get install gdal-bin)`,
        );
      throw new Error(`ogr2ogr failed writing ${outPath}: ${e.stderr ?? e.message}`);
    }
    if (format === 'gpkg') {
      await addGpkgAliases(outPath, layer, signal);
      return [outPath];
    }
    return readdirSync(outPath)
      .filter((f) => f.startsWith(`${layer}.`))
      .map((f) => join(outPath, f));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

const sqlText = (v: string) => `'${v.replace(/'/g, "''")}'`;

/**
 * The GeoPackage schema extension's data-columns table, with each field's Chinese alias as its
 * `name` and `title`: GDAL reads `name` as the field's alternative name, which QGIS shows as the
 * alias. Written through ogrinfo's SQL (SQLite underneath), one statement per call.
 */
function gpkgAliasStatements(layer: string): string[] {
  return [
    'CREATE TABLE IF NOT EXISTS gpkg_data_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL, name TEXT, title TEXT, description TEXT, mime_type TEXT, constraint_name TEXT, CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name), CONSTRAINT gdc_tn UNIQUE (table_name, name))',
    "INSERT OR IGNORE INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope) VALUES ('gpkg_data_columns', NULL, 'gpkg_schema', 'http://www.geopackage.org/spec121/#extension_schema', 'read-write')",
    `INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title, description) VALUES ${FIELDS.map((f) => `(${sqlText(layer)}, ${sqlText(f.name)}, ${sqlText(f.alias)}, ${sqlText(f.alias)}, NULL)`).join(', ')}`,
  ];
}

async function addGpkgAliases(path: string, layer: string, signal?: AbortSignal): Promise<void> {
  for (const sql of gpkgAliasStatements(layer)) {
    try {
      await run('ogrinfo', ['-q', path, '-sql', sql], { timeout: 60_000, signal });
    } catch (err) {
      signal?.throwIfAborted();
      throw new Error(
        `ogrinfo failed writing field aliases into ${path}: ${(err as { stderr?: string }).stderr ?? (err as Error).message}`,
      );
    }
  }
}
