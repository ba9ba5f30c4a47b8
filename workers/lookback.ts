import { BadInputError } from '../core/errors.ts';
import { grownRegion } from '../pipeline/detect.tile.ts';
import { readBaselineOnGrid } from '../pipeline/pair.align.ts';
import { worldToPixel, type GeoTransform } from '../pipeline/geotransform.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import {
  EVIDENCE_MARGIN_PX,
  footprintEvidence,
  judgeFootprint,
  MIN_VALID_SHARE,
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
  /** What the judgement rests on (kept in the history). */
  evidence?: Record<string, number | null>;
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

/** Patches judged at once. */
const IN_FLIGHT = 4;

export interface LookbackParams extends LookbackThresholds {
  /** Months after closing a patch is still judged. */
  months: number;
}

/**
 * 回头看 for one batch: every patch ordered demolished or confiscated that the batch's imagery covers
 * (sql/lookback/targets.sql) is judged from the pixels over its footprint and the ring around it, the
 * month the structure was detected in (when it stood) against the batch's month
 * (pipeline/lookback.judge.ts says how, and why not with the change model). Each patch costs one small
 * window around its outline, not the scene. Judges only: the diff records the results in its
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
  const checks: ImageryCheck[] = Array.from({ length: targets.length });
  const timing = { readMs: 0, judgeMs: 0 };
  const judge = async (t: (typeof targets)[number]): Promise<ImageryCheck> => {
    const none = (reason: string): ImageryCheck => ({
      patch_id: t.patch_id,
      code: t.code,
      result: 'no_imagery',
      score: null,
      valid_share: 0,
      reason,
    });
    if (!t.ref_path) return none(`no imagery of ${t.reference_month}, when the patch was detected, covers it any more`);
    if (t.current.length === 0) return none('the tiles of this batch over the patch failed');
    try {
      return await judgeOne(timing, ctx, t, open, params);
    } catch (err) {
      // a scene changed or damaged since registration, another CRS: nothing to judge on, say why
      if (!(err instanceof BadInputError)) throw err;
      return none(err.message);
    }
  };
  try {
    // a few patches in flight, so one's blocks inflate on libuv's threads while another is judged
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(IN_FLIGHT, targets.length) }, async () => {
        while (next < targets.length) {
          const k = next++;
          checks[k] = await judge(targets[k]);
        }
      }),
    );
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
    readMs: Math.round(timing.readMs),
    judgeMs: Math.round(timing.judgeMs),
  });
  return { checks, ms };
}

async function judgeOne(
  timing: { readMs: number; judgeMs: number },
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
  // both months on the reference grid, with a margin for the ring and the registration
  const win = grownRegion(region, info.widthPx, info.heightPx, EVIDENCE_MARGIN_PX);
  const bands = ctx.model.manifest.bands.indices;
  const t0 = performance.now();
  const [a, b] = await Promise.all([
    readBaselineOnGrid(info, win, [{ source: ref, stretch: t.ref_stretch }], bands),
    readBaselineOnGrid(info, win, baselines, bands),
  ]);
  const t1 = performance.now();
  const valid = Uint8Array.from(a.valid, (v, i) => v & b.valid[i]);
  const footprint = rasterisePolygons(
    px.map((poly) => poly.map((ring) => ring.map(([c, r]) => [c - win.x, r - win.y]))),
    win.width,
    win.height,
  );
  const evidence = footprintEvidence(a.bands, b.bands, valid, footprint, win.width, win.height);
  const j = judgeFootprint(evidence, thresholds);
  timing.readMs += t1 - t0;
  timing.judgeMs += performance.now() - t1;
  return {
    patch_id: t.patch_id,
    code: t.code,
    result: j.result,
    score: j.score,
    valid_share: j.validShare,
    reason:
      j.result === 'no_imagery'
        ? `the two months have data over ${(j.validShare * 100).toFixed(0)}% of the patch (${MIN_VALID_SHARE * 100}% needed)`
        : null,
    evidence: {
      diff_in: round3(evidence.diffIn),
      diff_ring: round3(evidence.diffRing),
      corr_in: round3(evidence.corrIn),
      shift_x: evidence.shift[0],
      shift_y: evidence.shift[1],
    },
  };
}

const round3 = (v: number | null) => (v === null ? null : Math.round(v * 1000) / 1000);

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
