import { BadInputError } from '../core/errors.ts';
import { detectRegion, releaseProbability } from '../pipeline/detect.tile.ts';
import { worldToPixel, type GeoTransform } from '../pipeline/geotransform.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import {
  judgeFootprint,
  rasterisePolygons,
  type LookbackResult,
  type LookbackThresholds,
} from '../pipeline/lookback.judge.ts';
import type { BandStretch } from '../pipeline/raster.normalise.ts';
import type { WindowPx } from '../pipeline/window.grid.ts';
import { runSql } from '../store/sql.ts';
import type { JobContext } from './jobs.ts';

/** One patch's judgement, as sql/lookback/record.sql keeps it. */
export interface ImageryCheck {
  patch_id: number;
  code: string;
  result: LookbackResult;
  score: number | null;
  valid_share: number;
  /** Why there was nothing to judge on (no_imagery), else null. */
  reason: string | null;
}

interface ImageRef {
  path: string;
  file_bytes: number | string | null;
  etag: string | null;
  stretch: BandStretch | null;
}

/** A row of sql/lookback/targets.sql. */
interface TargetRow {
  patch_id: number | string;
  code: string;
  reference_month: string;
  ref_path: string | null;
  ref_file_bytes: number | string | null;
  ref_etag: string | null;
  ref_stretch: BandStretch | null;
  /** The patch in the reference scene's CRS. */
  geom: { type: 'Polygon' | 'MultiPolygon'; coordinates: number[][][] | number[][][][] } | null;
  current: ImageRef[];
}

export interface LookbackParams extends LookbackThresholds {
  /** Months after closing a patch is still judged. */
  months: number;
}

/**
 * 回头看 for one batch: every patch ordered demolished or confiscated that the batch's imagery covers
 * (sql/lookback/targets.sql) is judged by running the change model over its footprint alone, with
 * the month the structure was detected in (when it stood) as the after image and the batch's month
 * as the before image — the two months swapped, so a building that disappeared looks like the new
 * building the model was made to find. Each patch costs one small region (its outline plus the
 * model's context margin), not the scene. Judges only: the diff records the results in its
 * transaction (store/batch.diff.ts), so a retried job leaves nothing twice.
 */
export async function lookBack(
  ctx: JobContext,
  batchId: number,
  params: LookbackParams,
): Promise<{ checks: ImageryCheck[]; ms: number }> {
  const t0 = performance.now();
  const targets = (await runSql<TargetRow>(ctx.db, 'lookback/targets', { batch_id: batchId, months: params.months }))
    .map((r) => ({ ...r, patch_id: Number(r.patch_id) }))
    .filter((r) => r.geom);
  const opened = new Map<string, Promise<GeoTiffSource>>();
  const open = (img: ImageRef) => {
    let s = opened.get(img.path);
    if (!s) {
      s = GeoTiffSource.open(img.path, {
        expect: { bytes: img.file_bytes === null ? null : Number(img.file_bytes), etag: img.etag },
      });
      s.catch(() => {}); // awaited where it is used; a refused file is that patch's no_imagery
      opened.set(img.path, s);
    }
    return s;
  };
  const checks: ImageryCheck[] = [];
  try {
    for (const t of targets) {
      const none = (reason: string): ImageryCheck => ({
        patch_id: t.patch_id,
        code: t.code,
        result: 'no_imagery',
        score: null,
        valid_share: 0,
        reason,
      });
      if (!t.ref_path) {
        checks.push(none(`no imagery of ${t.reference_month}, when the patch was detected, covers it any more`));
        continue;
      }
      if (t.current.length === 0) {
        checks.push(none('the tiles of this batch over the patch failed'));
        continue;
      }
      try {
        checks.push(await judgeOne(ctx, t, open, params));
      } catch (err) {
        // a scene changed or damaged since registration, another CRS: nothing to judge on, say why
        if (!(err instanceof BadInputError)) throw err;
        checks.push(none(err.message));
      }
    }
  } finally {
    for (const s of opened.values()) await s.then((src) => src.close()).catch(() => {});
  }
  const ms = Math.round(performance.now() - t0);
  ctx.log.info('Batch:LookedBack', {
    batchId,
    patches: checks.length,
    ...Object.fromEntries(
      (['gone', 'standing', 'unclear', 'no_imagery'] as const).map((r) => [
        r,
        checks.filter((c) => c.result === r).length,
      ]),
    ),
    ms,
  });
  return { checks, ms };
}

async function judgeOne(
  ctx: JobContext,
  t: TargetRow & { patch_id: number },
  open: (img: ImageRef) => Promise<GeoTiffSource>,
  thresholds: LookbackThresholds,
): Promise<ImageryCheck> {
  const ref = await open({ path: t.ref_path!, file_bytes: t.ref_file_bytes, etag: t.ref_etag, stretch: t.ref_stretch });
  const baselines = [];
  for (const c of t.current) baselines.push({ source: await open(c), stretch: c.stretch });
  const info = ref.info;
  const polys = (t.geom!.type === 'Polygon' ? [t.geom!.coordinates] : t.geom!.coordinates) as number[][][][];
  const toPx = pixelsOf(info.geoTransform);
  const px = polys.map((poly) => poly.map((ring) => ring.map(toPx)));
  const region = boundsPx(px, info.widthPx, info.heightPx);
  if (!region)
    return {
      patch_id: t.patch_id,
      code: t.code,
      result: 'no_imagery',
      score: null,
      valid_share: 0,
      reason: `${info.file} does not cover the patch`,
    };
  const detected = await detectRegion({
    after: ref,
    afterStretch: t.ref_stretch,
    baselines,
    model: ctx.model,
    region,
  });
  try {
    const footprint = rasterisePolygons(
      px.map((poly) => poly.map((ring) => ring.map(([c, r]) => [c - region.x, r - region.y]))),
      region.width,
      region.height,
    );
    const j = judgeFootprint(detected.probability, detected.valid, footprint, thresholds);
    return {
      patch_id: t.patch_id,
      code: t.code,
      result: j.result,
      score: j.score,
      valid_share: j.validShare,
      reason: j.result === 'no_imagery' ? `both months have data over ${(j.validShare * 100).toFixed(0)}% of it` : null,
    };
  } finally {
    releaseProbability(detected);
  }
}

/** World coordinates → pixel-corner coordinates [col, row] of a raster. */
function pixelsOf(gt: GeoTransform): (p: number[]) => number[] {
  return (p) => {
    const { col, row } = worldToPixel(gt, p[0], p[1]);
    return [col, row];
  };
}

/** The whole pixels a set of polygons (pixel coordinates) covers, clipped to the raster; null when outside it. */
function boundsPx(polys: number[][][][], widthPx: number, heightPx: number): WindowPx | null {
  const pts = polys.flat(2);
  const x0 = Math.max(0, Math.floor(Math.min(...pts.map((p) => p[0])))),
    y0 = Math.max(0, Math.floor(Math.min(...pts.map((p) => p[1]))));
  const x1 = Math.min(widthPx, Math.ceil(Math.max(...pts.map((p) => p[0])))),
    y1 = Math.min(heightPx, Math.ceil(Math.max(...pts.map((p) => p[1]))));
  return x1 > x0 && y1 > y0 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : null;
}
