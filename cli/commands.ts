import { writeFileSync } from 'node:fs';
import { area as turfArea } from '@turf/area';
import type { Config } from '../config/env.ts';
import { detectRegion } from '../pipeline/detect.tile.ts';
import { partGrid } from '../pipeline/window.grid.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { encodeGeoTiff } from '../pipeline/io/geotiff.write.ts';
import { LAYER_KINDS, type LayerKind } from '../pipeline/layer.parse.ts';
import type { Logger } from '../core/log.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';
import { getBatch, listPatches, type BatchSummary } from '../store/batch.ts';
import type { Db } from '../store/db.ts';
import { registerImagery } from '../store/imagery.ts';
import { importLayer } from '../store/layers.ts';
import { migrate } from '../store/migrate.ts';
import { launchBatch, retryFailedTiles, waitForBatch, type BatchProgress } from '../workers/batch.launch.ts';
import { checkRedis } from '../workers/queues.ts';
import { startWorkers, type WorkerPool } from '../workers/worker.pool.ts';

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

/**
 * Launch a batch; with `wait`, follow it to the end. With embedded PGlite (one process only) or
 * `inProcessWorkers`, the workers run inside this process.
 */
export async function cmdBatchRun(
  db: Db,
  config: Config,
  log: Logger,
  opts: {
    month: string;
    baseline?: string;
    wait: boolean;
    inProcessWorkers: boolean;
    threshold?: number;
    regularise?: boolean;
    onProgress?: (p: BatchProgress) => void;
  },
): Promise<{ batchId: number; summary: BatchSummary | null }> {
  await checkRedis(config);
  const model = await OnnxChangeModel.load(config.modelDir, { intraOpThreads: config.TUBAN_ORT_THREADS });
  let pool: WorkerPool | undefined;
  try {
    if (opts.inProcessWorkers) pool = startWorkers({ db, config, model, log });
    const { batch, tiles } = await launchBatch(
      db,
      config,
      model.manifest,
      opts.month,
      opts.baseline,
      opts.threshold,
      opts.regularise,
    );
    log.info('Batch:Queued', {
      batchId: batch.id,
      month: batch.month,
      baselineMonth: batch.baseline_month,
      tiles: tiles.length,
      failedAtStart: tiles.filter((t) => t.status === 'failed').length,
    });
    if (!opts.wait) return { batchId: batch.id, summary: null };
    const done = await waitForBatch(db, batch.id, opts.onProgress ?? (() => {}), {
      timeoutMs: pool ? undefined : 6 * 3600_000,
      wake: pool?.onceDiffEnds,
    });
    return { batchId: batch.id, summary: done.summary };
  } finally {
    await pool?.close();
    await model.close();
  }
}

export async function cmdBatchRetry(
  db: Db,
  config: Config,
  log: Logger,
  opts: { batchId: number; wait: boolean; inProcessWorkers: boolean },
): Promise<{ retried: number; stillFailed: string[]; summary: BatchSummary | null }> {
  await checkRedis(config);
  const model = opts.inProcessWorkers
    ? await OnnxChangeModel.load(config.modelDir, { intraOpThreads: config.TUBAN_ORT_THREADS })
    : null;
  const pool = model ? startWorkers({ db, config, model, log }) : undefined;
  try {
    const r = await retryFailedTiles(db, config, opts.batchId);
    log.info('Batch:Retried', { batchId: opts.batchId, retried: r.retried.length, stillFailed: r.stillFailed.length });
    let summary: BatchSummary | null = null;
    if (opts.wait && r.retried.length)
      summary = (
        await waitForBatch(db, opts.batchId, () => {}, {
          timeoutMs: pool ? undefined : 6 * 3600_000,
          wake: pool?.onceDiffEnds,
        })
      ).summary;
    else if (opts.wait) summary = (await getBatch(db, opts.batchId)).summary;
    return { retried: r.retried.length, stillFailed: r.stillFailed.map((t) => t.path), summary };
  } finally {
    await pool?.close();
    await model?.close();
  }
}

export async function cmdBatchStatus(
  db: Db,
  batchId: number,
): Promise<BatchSummary | { batchId: number; status: string }> {
  const b = await getBatch(db, batchId);
  return b.summary ?? { batchId: b.id, status: b.status };
}

export async function cmdPatchesList(db: Db, month: string, town?: string): Promise<Record<string, unknown>[]> {
  return listPatches(db, month, town ?? null);
}

export async function cmdDetect(
  config: Config,
  beforePath: string,
  afterPath: string,
  outPath: string,
  modelDir?: string,
): Promise<string> {
  const model = await OnnxChangeModel.load(modelDir ?? config.modelDir, { intraOpThreads: config.TUBAN_ORT_THREADS });
  const after = await GeoTiffSource.open(afterPath);
  const before = await GeoTiffSource.open(beforePath);
  try {
    const t0 = performance.now();
    // part by part, as the batch does, so only the output raster grows with the scene
    const { widthPx, heightPx } = after.info;
    const probability = new Float32Array(widthPx * heightPx);
    // a model with an interior output writes it as band 2 (tuban vectorize splits touching buildings with it)
    const interior = model.manifest.interior ? new Float32Array(widthPx * heightPx) : null;
    let windows = 0;
    for (const part of partGrid(widthPx, heightPx, config.TUBAN_PART_PX)) {
      const r = await detectRegion({ after, baselines: [{ source: before }], model, region: part });
      for (let row = 0; row < part.height; row++) {
        probability.set(
          r.probability.subarray(row * part.width, (row + 1) * part.width),
          (part.y + row) * widthPx + part.x,
        );
        if (interior && r.interior)
          interior.set(
            r.interior.subarray(row * part.width, (row + 1) * part.width),
            (part.y + row) * widthPx + part.x,
          );
      }
      windows += r.windows;
    }
    let samples = probability;
    if (interior) {
      samples = new Float32Array(widthPx * heightPx * 2);
      for (let i = 0; i < widthPx * heightPx; i++) {
        samples[2 * i] = probability[i];
        samples[2 * i + 1] = interior[i];
      }
    }
    const bytes = encodeGeoTiff({
      widthPx,
      heightPx,
      samples,
      bands: interior ? 2 : 1,
      crs: after.info.crs,
      geoTransform: after.info.geoTransform,
    });
    writeFileSync(outPath, Buffer.from(bytes));
    const changed = probability.reduce((n, p) => n + (p >= model.manifest.defaultThreshold ? 1 : 0), 0);
    return `${outPath}: change probability${interior ? ' (band 1) and building interior (band 2)' : ''} ${widthPx}×${heightPx} px on ${afterPath}'s grid (EPSG:${after.info.crs.epsg}), ${windows} windows, ${changed} px ≥ ${model.manifest.defaultThreshold}, ${Math.round(performance.now() - t0)} ms, model ${model.manifest.name} ${model.manifest.version}`;
  } finally {
    await after.close();
    await before.close();
    await model.close();
  }
}

export async function cmdVectorize(
  input: string,
  outPath: string,
  opts: { threshold: number; minAreaM2: number; simplifyM: number; interiorThreshold?: number },
): Promise<string> {
  const src = await GeoTiffSource.open(input);
  try {
    const { widthPx, heightPx, crs, geoTransform } = src.info;
    const whole = { x: 0, y: 0, width: widthPx, height: heightPx };
    const [band] = await src.readWindow(whole, [0]);
    // `tuban detect` writes a model's building-interior probability as a second float band: its seeds split touching buildings
    const interior =
      src.info.bandCount === 2 && band instanceof Float32Array ? (await src.readWindow(whole, [1]))[0] : undefined;
    const values =
      band instanceof Float32Array
        ? band
        : band instanceof Uint8Array && band.every((v) => v <= 1)
          ? band
          : Float32Array.from(band, (v) => (v > 1 ? v / 255 : v));
    const metresPerUnit = crs.geographic ? 111_320 : 1;
    const features = vectorizeRaster(values, widthPx, heightPx, geoTransform, {
      threshold: opts.threshold,
      minAreaM2: opts.minAreaM2,
      simplifyToleranceM: opts.simplifyM,
      metresPerUnit,
      interior: interior instanceof Float32Array ? interior : undefined,
      interiorThreshold: opts.interiorThreshold,
    });
    if (crs.geographic) for (const f of features) f.properties.area_m2 = Math.round(turfArea(f) * 1e4) / 1e4;
    const fc = {
      type: 'FeatureCollection',
      crs: { type: 'name', properties: { name: `urn:ogc:def:crs:EPSG::${crs.epsg}` } },
      features,
    };
    writeFileSync(outPath, JSON.stringify(fc));
    return `${outPath}: ${features.length} polygon(s) in EPSG:${crs.epsg}, ${features.reduce((s, f) => s + f.properties.area_m2, 0).toFixed(1)} m² in all`;
  } finally {
    await src.close();
  }
}
