import { FIELDS, toRecord } from '../../export/fields.ts';
import { csvCell, csvHead } from '../../export/write.text.ts';
import type { Db } from '../../store/db.ts';
import { runSql } from '../../store/sql.ts';
import type { WorkflowEnv } from '../../workflow/env.ts';

/**
 * The month's CSV as Node made it before the database did (issue 33): the rows of sql/export/patches.sql
 * through toRecord, as the other formats have them, each cell by csvCell. The database's lines
 * (sql/export/patches.csv.sql) are held to it byte for byte.
 */
export async function referenceCsv(
  db: Db,
  env: WorkflowEnv,
  month: string,
  town: string | null = null,
): Promise<Buffer> {
  const rows = await runSql<Record<string, unknown>>(db, 'export/patches', {
    month,
    town,
    with_geom: false,
    scope_town: null,
    states: null,
  });
  const today = env.today();
  const lines = rows.map((r) => {
    const record = toRecord(r, env.calendar, today);
    return `${FIELDS.map((f) => csvCell(record[f.name])).join(',')}\r\n`;
  });
  return Buffer.concat([csvHead(), Buffer.from(lines.join(''), 'utf8')]);
}
