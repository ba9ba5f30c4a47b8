/** What `tuban detect` and `tuban vectorize` do: one image pair or raster, without database or queue. */
import { writeFileSync } from 'node:fs';
import { area as turfArea } from '@turf/area';
import type { Config } from '../config/env.ts';
import { detectRegion } from '../pipeline/detect.tile.ts';
import { partGrid } from '../pipeline/window.grid.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { writeGeoTiff } from '../pipeline/io/geotiff.write.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { vectorizeRaster } from '../pipeline/vectorize.ts';

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
    writeGeoTiff(outPath, {
      widthPx,
      heightPx,
      samples,
      bands: interior ? 2 : 1,
      crs: after.info.crs,
      geoTransform: after.info.geoTransform,
    });
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
