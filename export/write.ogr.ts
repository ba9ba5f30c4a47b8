import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BadInputError } from '../pipeline/errors.ts';
import type { ExportRecord } from './fields.ts';
import { toStorageGeoJson } from './write.text.ts';

const run = promisify(execFile);

/**
 * The ogr2ogr command line that turns the storage-CRS GeoJSON into a GeoPackage or a Shapefile —
 * as data, so it can be logged and tested. GDAL writes the .prj / gpkg_spatial_ref_sys entry from
 * the EPSG code, and for a Shapefile a .cpg declaring UTF-8 so QGIS and ArcGIS read the Chinese.
 */
export function ogrCommand(format: 'gpkg' | 'shp', input: string, output: string, srid: number, layer: string): string[] {
  const common = ['-a_srs', `EPSG:${srid}`, '-nln', layer, '-nlt', 'MULTIPOLYGON', output, input];
  if (format === 'gpkg') return ['-f', 'GPKG', '-overwrite', ...common];
  return ['-f', 'ESRI Shapefile', '-lco', 'ENCODING=UTF-8', '-overwrite', ...common];
}

/** Writes a GeoPackage file, or a Shapefile's files into `outDir`; returns the written paths. */
export async function writeWithOgr(format: 'gpkg' | 'shp', records: ExportRecord[], srid: number, outPath: string, layer = 'patches'): Promise<string[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'tuban-export-'));
  try {
    const input = join(tmp, 'in.geojson');
    writeFileSync(input, toStorageGeoJson(records, srid));
    try {
      await run('ogr2ogr', ogrCommand(format, input, outPath, srid, layer), { timeout: 120_000 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') throw new BadInputError('gdal_missing', `writing ${format.toUpperCase()} needs GDAL's ogr2ogr (Debian: apt-get install gdal-bin)`);
      throw new Error(`ogr2ogr failed writing ${outPath}: ${e.stderr ?? e.message}`);
    }
    if (format === 'gpkg') return [outPath];
    return readdirSync(outPath).filter((f) => f.startsWith(`${layer}.`)).map((f) => join(outPath, f));
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
