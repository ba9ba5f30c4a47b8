import type { Db } from './db.ts';
import { DEFAULT_PART_PX } from '../config/env.ts';
import { partGrid, type ScenePart } from '../pipeline/window.grid.ts';
import { runSql } from './sql.ts';
import type { TileStatus } from './batch.ts';

// ---------------------------------------------------------------------------------------------
// Parts: each tile (scene) is processed as window ranges with their own jobs; the tile's row is
// rolled up from its parts.

/** A batch's part size, as launched (batches launched before it was kept have the default's). */
export const partPxOf = (params: Record<string, unknown> | null | undefined): number =>
  Number(params?.partPx ?? DEFAULT_PART_PX);

export interface BatchPartRow extends ScenePart {
  imagery_id: number;
  status: TileStatus;
}

/** Create the part rows of tiles that have none yet (idempotent; called by every enqueue: launch, retry, resume). */
export async function ensureParts(db: Db, batchId: number, imageryIds: number[], partPx: number): Promise<void> {
  if (!imageryIds.length) return;
  const sizes = await db('imagery').whereIn('id', imageryIds).select('id', 'width_px', 'height_px');
  const rows = sizes.flatMap((i) =>
    partGrid(Number(i.width_px), Number(i.height_px), partPx).map((p) => ({
      batch_id: batchId,
      imagery_id: Number(i.id),
      ...p,
      status: 'queued',
    })),
  );
  for (let k = 0; k < rows.length; k += 500)
    await db('batch_part')
      .insert(rows.slice(k, k + 500))
      .onConflict(['batch_id', 'imagery_id', 'part'])
      .ignore();
}

const partColumns = ['imagery_id', 'part', 'x', 'y', 'width', 'height', 'status'] as const;
const toPartRow = (r: Record<string, any>): BatchPartRow =>
  ({ ...r, imagery_id: Number(r.imagery_id) }) as BatchPartRow;

/** Parts of a batch's tiles, optionally only those not yet vectorized. */
export async function batchParts(
  db: Db,
  batchId: number,
  opts: { imageryIds?: number[]; unfinished?: boolean } = {},
): Promise<BatchPartRow[]> {
  const q = db('batch_part')
    .where({ batch_id: batchId })
    .orderBy(['imagery_id', 'part'])
    .select(...partColumns);
  if (opts.imageryIds) q.whereIn('imagery_id', opts.imageryIds);
  if (opts.unfinished) q.whereNotIn('status', ['vectorized', 'failed']);
  return (await q).map(toPartRow);
}

type PartFields = Partial<{
  status: TileStatus;
  error_code: string | null;
  error_message: string | null;
  windows: number;
  polygons: number;
  valid_px: number;
  timings: Record<string, number>;
}>;

/**
 * Update a part and roll its tile up, in the caller's transaction, in two statements: the first
 * locks the tile's row and records the part (sql/batch/update_part.sql), so two parts finishing at
 * once roll up one after the other; the second, with a snapshot taken after the lock, sums the
 * parts into the tile (sql/batch/rollup_tile.sql) and so sees both.
 */
export async function updatePartAndTile(
  trx: Db,
  batchId: number,
  imageryId: number,
  part: number,
  fields: PartFields,
): Promise<TileStatus> {
  const params = {
    batch_id: batchId,
    imagery_id: imageryId,
    part,
    status: fields.status ?? 'queued',
    error_code: fields.error_code ?? null,
    error_message: fields.error_message ?? null,
    windows: fields.windows ?? null,
    polygons: fields.polygons ?? null,
    valid_px: fields.valid_px ?? null,
    timings: JSON.stringify(fields.timings ?? {}),
  };
  const [locked] = await runSql<{ tile_status: TileStatus | null; parts: number }>(trx, 'batch/update_part', params);
  if (!locked?.tile_status) throw new Error(`batch ${batchId} has no tile for imagery ${imageryId}`);
  if (!locked.parts) throw new Error(`batch ${batchId} tile ${imageryId} has no part ${part}`);
  const [rolled] = await runSql<{ status: TileStatus }>(trx, 'batch/rollup_tile', {
    batch_id: batchId,
    imagery_id: imageryId,
    timings: params.timings,
  });
  return rolled?.status ?? 'failed';
}
