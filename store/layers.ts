import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Db } from './db.ts';
import { BadInputError } from '../core/errors.ts';
import {
  decodeLayerText,
  implausibleForSrid,
  parseLayer,
  type LayerKind,
  type RejectedFeature,
} from '../pipeline/layer.parse.ts';
import { runSql } from './sql.ts';

export interface LayerImportResult {
  file: string;
  kind: LayerKind;
  srid: number;
  imported: number;
  repaired: { index: number; code: string | null; reason: string }[];
  rejected: RejectedFeature[];
  replaced: number;
}

/**
 * Import a reference layer file. Rows previously imported from the same file and kind are
 * replaced in the same transaction, so re-importing a corrected file is safe. Invalid geometry
 * is repaired with ST_MakeValid (and reported); features that cannot be used are rejected with
 * their index, code and reason — never dropped silently.
 */
export async function importLayer(
  db: Db,
  file: string,
  kind: LayerKind,
  sridOverride?: number,
): Promise<LayerImportResult> {
  const path = resolve(file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new BadInputError('file_missing', `${file}: cannot read (${(err as Error).message})`, { file });
  }
  const parsed = parseLayer(decodeLayerText(bytes, file), file, sridOverride);
  const known = await db.raw(
    "select proj4text like '%+proj=longlat%' as geographic from spatial_ref_sys where srid = ?",
    [parsed.srid],
  );
  if (known.rows.length === 0)
    throw new BadInputError('unknown_crs', `${file}: EPSG:${parsed.srid} is not in PostGIS's spatial_ref_sys`, {
      file,
      srid: parsed.srid,
    });
  const implausible = implausibleForSrid(parsed.features, parsed.srid, Boolean(known.rows[0].geographic));
  const skip = new Set(implausible.map((r) => r.index));
  parsed.features = parsed.features.filter((f) => !skip.has(f.index));
  const rejected = [...parsed.rejected, ...implausible];
  const repaired: LayerImportResult['repaired'] = [];
  let imported = 0;
  let replaced = 0;
  await db.transaction(async (trx) => {
    const [{ n }] = await trx('reference_feature').where({ source_file: path, kind }).count({ n: '*' });
    replaced = Number(n);
    await trx('reference_feature').where({ source_file: path, kind }).delete();
    for (const f of parsed.features) {
      const sp = `f${f.index}`;
      await trx.raw(`savepoint ${sp}`);
      try {
        const rows = await runSql<{ id: number; repaired: boolean; invalid_reason: string }>(trx, 'layers/insert', {
          kind,
          code: f.code,
          name: f.name,
          district_code: f.districtCode,
          valid_from: f.validFrom,
          valid_to: f.validTo,
          props: JSON.stringify(f.props),
          source_file: path,
          source_index: f.index,
          geojson: JSON.stringify(f.geometry),
          srid: parsed.srid,
        });
        await trx.raw(`release savepoint ${sp}`);
        if (rows.length === 0)
          rejected.push({
            index: f.index,
            code: f.code,
            reason: 'no polygonal area left after ST_MakeValid (empty or collapsed geometry)',
          });
        else {
          imported++;
          if (rows[0].repaired) repaired.push({ index: f.index, code: f.code, reason: rows[0].invalid_reason });
        }
      } catch (err) {
        await trx.raw(`rollback to savepoint ${sp}`);
        rejected.push({ index: f.index, code: f.code, reason: `PostGIS refused the geometry: ${pgMessage(err)}` });
      }
    }
  });
  rejected.sort((a, b) => a.index - b.index);
  return { file: path, kind, srid: parsed.srid, imported, repaired, rejected, replaced };
}

/** The server's own words from a knex error (knex prefixes the whole SQL text). */
function pgMessage(err: unknown): string {
  const m = (err as Error).message;
  const i = m.lastIndexOf(' - ');
  return i >= 0 ? m.slice(i + 3) : m;
}

/** A town's name from the town layer, or null when the layer has no such town. */
export async function townName(db: Db, code: string): Promise<string | null> {
  const row = await db('reference_feature').where({ kind: 'town', code }).first('name');
  return (row?.name as string | undefined) ?? null;
}

/** Changes whenever the town layer is imported again (or a town added or removed). */
export async function townLayerVersion(db: Db): Promise<string> {
  const r = await db('reference_feature')
    .where({ kind: 'town' })
    .first(
      db.raw('count(*)::int as n'),
      db.raw('coalesce(max(id), 0)::bigint as last'),
      db.raw('max(imported_at) as at'),
    );
  return `${r.n}-${r.last}-${r.at ? new Date(r.at).getTime() : 0}`;
}
