import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import sharp from 'sharp';
import { splitTouching } from '../pipeline/mask.split.ts';
import { objectCounts, pixelCounts } from '../pipeline/metrics.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildFeeds } from '../pipeline/change.model.ts';
import { EPSG_4548 } from '../core/crs.ts';
import { detectTile } from '../pipeline/detect.tile.ts';
import { loadManifest } from '../pipeline/io/model.manifest.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { MemorySource, type RasterInfo } from '../pipeline/raster.source.ts';
import { loadConfig } from '../config/env.ts';
import { firstDifference, sameBytes } from './helpers/bytes.ts';

const DIR = 'models/siam-unet-lite';
const GT: RasterInfo['geoTransform'] = [611200, 0.5, 0, 2713600, 0, -0.5];

function raster(file: string, w: number, h: number, fill: (x: number, y: number, b: number) => number): MemorySource {
  const bands = [0, 1, 2].map((b) => Uint8Array.from({ length: w * h }, (_, i) => fill(i % w, Math.floor(i / w), b)));
  return new MemorySource(
    {
      file,
      widthPx: w,
      heightPx: h,
      bandCount: 3,
      sampleType: 'uint8',
      nodata: null,
      crs: EPSG_4548,
      geoTransform: GT,
    },
    bands,
  );
}

/** The contract between the trained model's files and the pipeline: manifest, ONNX graph, shapes, output. */
describe('siam-unet-lite ONNX model', () => {
  it('is the default model, with its provenance in the manifest', () => {
    expect(loadConfig({}).modelDir.endsWith(DIR)).toBe(true);
    const { manifest } = loadManifest(DIR);
    expect(manifest.output.kind).toBe('probability');
    expect(manifest.provenance).toMatchObject({
      kind: 'trained',
      recipe: 'models/siam-unet-lite/train.py',
      seed: expect.any(Number),
    });
    const p = manifest.provenance as {
      architecture: { parameters: number };
      trainingData: { folder: string }[];
      metricsAtExport: { pixel: Record<string, unknown> };
    };
    expect(p.architecture.parameters).toBeLessThanOrEqual(2_000_000);
    expect(p.trainingData.map((d) => d.folder)).not.toContain('levir-cd-dev');
    expect(Object.keys(p.metricsAtExport.pixel)).toEqual(
      expect.arrayContaining(['egy-bcd-val', 'pak-houses-val', 'levir-cd-t38']),
    );
    // trained on LEVIR-CD images, never on the validation images its split file names
    expect(p.trainingData.map((d) => d.folder)).toContain('levir-cd-t38');
    const split = JSON.parse(readFileSync(join(DIR, 'split.json'), 'utf8')).validation['levir-cd-t38'] as string[];
    expect(split.length).toBeGreaterThanOrEqual(6);
    expect((manifest.provenance as { split: Record<string, string[]> }).split['levir-cd-t38']).toEqual(
      [...split].sort(),
    );
  });

  it('takes 8-bit samples of any batch, height and width and returns a probability per pixel', async () => {
    const model = await OnnxChangeModel.load(DIR, { intraOpThreads: 1 });
    expect(model.manifest.inputType).toBe('uint8');
    for (const [n, h, w] of [
      [1, 64, 64],
      [2, 100, 140],
      [1, 257, 33],
    ]) {
      const x = Uint8Array.from({ length: n * 3 * h * w }, (_, i) => (i * 7919) % 255);
      const { probability: out } = await model.run(
        x,
        x.map((v) => 255 - v),
        n,
        h,
        w,
      );
      expect(out.length).toBe(n * h * w);
      expect(out.every((p) => p >= 0 && p <= 1)).toBe(true);
    }
    // floats normalised outside the graph are refused, not misread
    const f = new Float32Array(3 * 16 * 16);
    await expect(model.run(f, f, 1, 16, 16)).rejects.toThrow(/feed must be uint8/);
    await model.close();
  });

  it('returns the building-interior probability beside the change, of the same shape', async () => {
    const model = await OnnxChangeModel.load(DIR, { intraOpThreads: 1 });
    try {
      expect(model.manifest.interior).toMatchObject({ name: 'interior', threshold: expect.any(Number) });
      const n = 2,
        h = 96,
        w = 80;
      const x = Uint8Array.from({ length: n * h * w * 3 }, (_, i) => (i * 7919) % 255);
      const r = await model.run(
        x,
        x.map((v) => 255 - v),
        n,
        h,
        w,
      );
      expect(r.interior).toBeInstanceOf(Float32Array);
      expect(r.interior!.length).toBe(n * h * w);
      expect(r.interior!.every((p) => p >= 0 && p <= 1)).toBe(true);
      expect(sameBytes(r.interior!, r.probability)).toBe(false);
    } finally {
      await model.close();
    }
  });

  it('gives the same probabilities from a GeoTIFF read pixel-interleaved as from the same pixels band by band, nodata included', async () => {
    const { writeGeoTiff } = await import('../pipeline/io/geotiff.write.ts');
    const { GeoTiffSource } = await import('../pipeline/io/geotiff.source.ts');
    const model = await OnnxChangeModel.load(DIR, { intraOpThreads: 1 });
    expect(
      buildFeeds(model.manifest, new Uint8Array(2 * 3 * 5 * 3), new Uint8Array(2 * 3 * 5 * 3), 2, 3, 5).before.dims,
    ).toEqual([2, 3, 5, 3]); // pixel-interleaved
    const W = 300,
      H = 260;
    const value = (x: number, y: number, b: number, t: number) =>
      x < 12 ? 0 : (x * (7 + t) + y * 3 + b * 41 + ((x >> 5) ^ (y >> 4)) * 29 * t) % 256;
    const dir = mkdtempSync(join(tmpdir(), 'tuban-nhwc-'));
    try {
      // 3-band RGB, and 4-band RGBN (the model picks bands 0-2 of 4 samples a pixel)
      for (const nb of [3, 4]) {
        const open = async (t: number) => {
          const samples = Uint8Array.from({ length: W * H * nb }, (_, i) =>
            value(Math.floor(i / nb) % W, Math.floor(i / nb / W), i % nb, t),
          );
          const file = join(dir, `t${t}-${nb}.tif`);
          writeGeoTiff(file, {
            widthPx: W,
            heightPx: H,
            samples,
            bands: nb,
            crs: EPSG_4548,
            geoTransform: GT,
            nodata: 0,
          });
          const tif = await GeoTiffSource.open(file);
          const bands = Array.from({ length: nb }, (_, b) =>
            Uint8Array.from({ length: W * H }, (_, i) => samples[i * nb + b]),
          );
          return { tif, mem: new MemorySource({ ...tif.info }, bands) };
        };
        const [a, b] = [await open(0), await open(1)];
        expect((await a.tif.readInterleaved({ x: 0, y: 0, width: 4, height: 1 }))?.samples).toBe(nb);
        const fromTif = await detectTile({ after: b.tif, baselines: [{ source: a.tif }], model });
        const fromBands = await detectTile({ after: b.mem, baselines: [{ source: a.mem }], model });
        expect(fromTif.validPx).toBe((W - 12) * H);
        expect(fromTif.validPx).toBe(fromBands.validPx);
        expect(firstDifference(fromTif.probability, fromBands.probability), `${nb} bands`).toBe(-1);
        await a.tif.close();
        await b.tif.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await model.close();
    }
  });

  it('marks little where nothing changed', async () => {
    const model = await OnnxChangeModel.load(DIR, { intraOpThreads: 1 });
    const W = 160;
    const ground = (x: number, y: number, b: number) =>
      [96, 110, 84][b] + ((x * 13 + y * 7 + b * 5) % 19) + (Math.floor(x / 24 + y / 40) % 2) * 12;
    const same = await detectTile({
      after: raster('after', W, W, ground),
      baselines: [{ source: raster('before', W, W, ground) }],
      model,
    });
    expect(same.probability.filter((p) => p >= model.manifest.defaultThreshold).length).toBeLessThan(W * W * 0.01);
    await model.close();
  });

  // A real pair it was never trained on (one of split.json's validation images): the new houses are
  // found, one object each once touching ones are split, and an unchanged date pair gives nearly nothing.
  const LEVIR = '../shared/data/change-pairs/levir-cd-t38';
  it.skipIf(!existsSync(LEVIR))(
    'finds the new houses of a held-out LEVIR-CD pair, each its own object (needs ../shared/data)',
    async () => {
      const model = await OnnxChangeModel.load(DIR);
      try {
        const name = 'test_44.png'; // 47 new houses in a subdivision
        expect(JSON.parse(readFileSync(join(DIR, 'split.json'), 'utf8')).validation['levir-cd-t38']).toContain(name);
        const png = async (sub: string) =>
          await sharp(join(LEVIR, sub, name))
            .removeAlpha()
            .raw()
            .toBuffer({ resolveWithObject: true });
        const [a, b, l] = [await png('A'), await png('B'), await png('label')];
        const mem = (img: typeof a, file: string) =>
          raster(
            file,
            img.info.width,
            img.info.height,
            (x, y, k) => img.data[(y * img.info.width + x) * img.info.channels + k],
          );
        const W = a.info.width,
          H = a.info.height;
        const truth = Uint8Array.from({ length: W * H }, (_, i) => (l.data[i * l.info.channels] > 127 ? 1 : 0));
        const r = await detectTile({ after: mem(b, 'after'), baselines: [{ source: mem(a, 'before') }], model });
        const pred = Uint8Array.from(r.probability, (p) => (p >= model.manifest.defaultThreshold ? 1 : 0));
        const px = pixelCounts(pred, truth);
        expect((2 * px.tp) / (2 * px.tp + px.fp + px.fn)).toBeGreaterThan(0.75);
        const merged = objectCounts(pred, truth, W, H);
        splitTouching(pred, r.interior!, W, H, { threshold: model.manifest.interior!.threshold });
        const split = objectCounts(pred, truth, W, H);
        expect(split.found / split.truth).toBeGreaterThan(0.65);
        expect(split.matched / split.predicted).toBeGreaterThan(0.6);
        expect(split.found).toBeGreaterThan(merged.found);
        const still = await detectTile({ after: mem(a, 'after'), baselines: [{ source: mem(a, 'before') }], model });
        expect(still.probability.filter((p) => p >= model.manifest.defaultThreshold).length).toBeLessThan(
          W * H * 0.002,
        );
      } finally {
        await model.close();
      }
    },
    120_000,
  );
});
