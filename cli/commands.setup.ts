/** What `tuban db migrate`, `layers import` and `imagery register` do: the month's batch needs them in place. */
import type { Config } from '../config/env.ts';
import { LAYER_KINDS, type LayerKind } from '../pipeline/layer.parse.ts';
import type { Db } from '../store/db.ts';
import { registerImagery } from '../imagery/register.ts';
import { importLayer } from '../store/layers.ts';
import { migrate } from '../store/migrate.ts';

export async function cmdMigrate(db: Db, config: Config): Promise<string> {
  const applied = await migrate(db, config);
  const grant =
    config.TUBAN_APP_ROLE && config.DATABASE_URL
      ? `; role ${config.TUBAN_APP_ROLE} may use it (rows only, history append-only)`
      : '';
  return (
    (applied.length
      ? `applied ${applied.join(', ')} to schema ${config.TUBAN_DB_SCHEMA}`
      : `schema ${config.TUBAN_DB_SCHEMA} is up to date`) + grant
  );
}

export async function cmdLayersImport(
  db: Db,
  file: string,
  kind: string,
  srid?: number,
): Promise<{ text: string; ok: boolean }> {
  if (!(LAYER_KINDS as readonly string[]).includes(kind))
    throw new Error(`--kind "${kind}" is not one of ${LAYER_KINDS.join(', ')}`);
  const r = await importLayer(db, file, kind as LayerKind, srid);
  const lines = [
    `${r.file}: ${r.imported} ${kind} feature(s) imported from EPSG:${r.srid}${r.replaced ? ` (replacing ${r.replaced} from an earlier import)` : ''}`,
  ];
  for (const f of r.repaired) lines.push(`  repaired feature #${f.index}${f.code ? ` (${f.code})` : ''}: ${f.reason}`);
  for (const f of r.rejected.slice(0, 100))
    lines.push(`  REJECTED feature #${f.index}${f.code ? ` (${f.code})` : ''}: ${f.reason}`);
  if (r.rejected.length > 100) lines.push(`  … and ${r.rejected.length - 100} more rejected feature(s)`);
  return { text: lines.join('\n'), ok: r.rejected.length === 0 };
}

export async function cmdImageryRegister(
  db: Db,
  config: Config,
  month: string,
  inputs: string[],
  date?: string,
): Promise<{ text: string; ok: boolean }> {
  const r = await registerImagery(db, config, month, inputs, date);
  const lines = [`${month}: ${r.registered.length} image(s) registered, ${r.refused.length} refused`];
  for (const i of r.registered)
    lines.push(
      `  ${i.inserted ? 'added  ' : 'updated'} ${i.path} ${i.widthPx}×${i.heightPx} px, ${i.bands} bands, EPSG:${i.epsg}, ${i.gsdM.toFixed(3)} m`,
    );
  for (const i of r.refused) lines.push(`  REFUSED ${i.path}: [${i.code}] ${i.reason}`);
  return { text: lines.join('\n'), ok: r.refused.length === 0 };
}
