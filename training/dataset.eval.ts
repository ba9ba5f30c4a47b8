import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join, basename, resolve } from 'node:path';
import sharp from 'sharp';
import { crs } from '../core/crs.ts';
import { detectTile, releaseProbability } from '../pipeline/detect.tile.ts';
import { removeSmallRegions, splitTouching } from '../pipeline/mask.split.ts';
import { BadInputError } from '../core/errors.ts';
import {
  addObject,
  addPixel,
  objectCounts,
  pixelCounts,
  summarise,
  type ObjectCounts,
  type PixelCounts,
} from '../pipeline/metrics.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { MemorySource, type RasterInfo } from '../pipeline/raster.source.ts';

const IMAGE = /\.(png|jpe?g|tif{1,2})$/i;

/** Image names of a change-detection dataset: `list/*.txt` when present, else the files of `A/` that have a B and a label. */
export function datasetNames(dir: string): string[] {
  for (const sub of ['A', 'B', 'label'])
    if (!existsSync(join(dir, sub)))
      throw new BadInputError('bad_dataset', `${dir}: no ${sub}/ folder (expected A/, B/ and label/)`);
  const listDir = join(dir, 'list');
  if (existsSync(listDir)) {
    const names = readdirSync(listDir)
      .filter((f) => f.endsWith('.txt'))
      .flatMap((f) => readFileSync(join(listDir, f), 'utf8').split(/\r?\n/))
      .map((s) => s.trim())
      .filter(Boolean);
    if (names.length) return [...new Set(names)].sort();
  }
  return readdirSync(join(dir, 'A'))
    .filter((f) => IMAGE.test(f))
    .sort();
}

function labelFile(dir: string, name: string): string {
  const stem = basename(name, extname(name));
  const exact = join(dir, 'label', name);
  if (existsSync(exact)) return exact;
  const alt = readdirSync(join(dir, 'label')).find((f) => basename(f, extname(f)) === stem);
  if (!alt) throw new BadInputError('bad_dataset', `${dir}: no label for ${name}`);
  return join(dir, 'label', alt);
}

export async function rgb(path: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(path)
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3)
    throw new BadInputError('bad_dataset', `${path}: ${info.channels} channels after conversion, expected 3`);
  return { data, width: info.width, height: info.height };
}

/** Labels are 0 = no change, 255 = change; JPEG noise is cut at 127 (not at > 0). */
export async function label(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(path).greyscale().raw().toBuffer({ resolveWithObject: true });
  return { data: Uint8Array.from(data, (v) => (v > 127 ? 1 : 0)), width: info.width, height: info.height };
}

export function source(name: string, img: { data: Buffer; width: number; height: number }, gsdM: number): MemorySource {
  const n = img.width * img.height;
  const bands = [0, 1, 2].map((b) => Uint8Array.from({ length: n }, (_, i) => img.data[i * 3 + b]));
  const info: RasterInfo = {
    file: name,
    widthPx: img.width,
    heightPx: img.height,
    bandCount: 3,
    sampleType: 'uint8',
    nodata: null,
    crs: crs(3857, false),
    geoTransform: [0, gsdM, 0, 0, 0, -gsdM],
  };
  return new MemorySource(info, bands);
}

export interface EvalResult {
  dataset: string;
  model: string;
  threshold: number;
  /** Whether objects were split at the model's building-interior seeds, as vectorize does. */
  split: boolean;
  images: ({ name: string } & ReturnType<typeof summarise>)[];
  total: ReturnType<typeof summarise>;
  /** The totals at other thresholds, to choose the manifest's defaultThreshold. */
  sweep: ({ threshold: number } & ReturnType<typeof summarise>)[];
}

/** Thresholds of the sweep: 0.20 to 0.80 by 0.05. */
const SWEEP = Array.from({ length: 13 }, (_, i) => Math.round((0.2 + i * 0.05) * 100) / 100);

/**
 * The validation images a split file names for `dir` (by the folder's name): {"validation": {"FOLDER": ["image.png", ...]}},
 * as models/siam-unet-lite/split.json and the training script read it.
 */
export function splitNames(splitFile: string, dir: string): string[] {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(splitFile, 'utf8'));
  } catch (err) {
    throw new BadInputError('bad_split', `${splitFile}: cannot read the split file (${(err as Error).message})`, {
      file: splitFile,
    });
  }
  const folder = basename(resolve(dir));
  const val = (doc as { validation?: Record<string, unknown> })?.validation;
  const names = val?.[folder];
  if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
    throw new BadInputError(
      'bad_split',
      `${splitFile}: no list of validation images for folder "${folder}" (folders: ${Object.keys(val ?? {}).join(', ') || 'none'})`,
      { file: splitFile },
    );
  }
  return names as string[];
}

/** Binary mask of `p ≥ threshold`. */
function binary(p: Float32Array, threshold: number): Uint8Array {
  return Uint8Array.from(p, (v) => (v >= threshold ? 1 : 0));
}

/**
 * Pixel and object metrics of a change model on a labelled dataset (A/, B/, label/). Pixel metrics
 * are those of the thresholded probability (what `tuban detect` gives); objects are the 8-connected
 * regions of that mask after the split of touching buildings at the model's interior seeds (what
 * vectorize turns into polygons), matched at IoU ≥ 0.5; with `minAreaM2`, predicted regions smaller than that
 * are dropped first, as the batch drops patches under TUBAN_MIN_AREA_M2.
 */
export async function evaluateDataset(
  dir: string,
  modelDir: string,
  opts: {
    threshold?: number;
    gsdM?: number;
    split?: string;
    sweep?: number[];
    interiorThreshold?: number;
    splitObjects?: boolean;
    minAreaM2?: number;
  } = {},
): Promise<EvalResult> {
  // the dataset and split are checked before the model's session is opened
  let names = datasetNames(dir);
  if (opts.split) {
    const wanted = splitNames(opts.split, dir);
    const missing = wanted.filter((n) => !names.includes(n));
    if (missing.length)
      throw new BadInputError('bad_split', `${opts.split}: ${missing.join(', ')} not in ${dir}/A`, {
        file: opts.split,
      });
    names = wanted.slice().sort();
  }
  const model = await OnnxChangeModel.load(modelDir);
  const threshold = opts.threshold ?? model.manifest.defaultThreshold;
  const gsdM = opts.gsdM ?? model.manifest.gsdM;
  const interiorThreshold = opts.interiorThreshold ?? model.manifest.interior?.threshold;
  const sweepAt = opts.sweep ?? SWEEP;
  let px: PixelCounts = { tp: 0, fp: 0, fn: 0, tn: 0 };
  let obj: ObjectCounts = { truth: 0, found: 0, truthLarge: 0, foundLarge: 0, predicted: 0, matched: 0 };
  const sweepPx = sweepAt.map((): PixelCounts => ({ tp: 0, fp: 0, fn: 0, tn: 0 }));
  const sweepObj = sweepAt.map((): ObjectCounts => ({
    truth: 0,
    found: 0,
    truthLarge: 0,
    foundLarge: 0,
    predicted: 0,
    matched: 0,
  }));
  const images: EvalResult['images'] = [];
  try {
    for (const name of names) {
      const a = await rgb(join(dir, 'A', name));
      const b = await rgb(join(dir, 'B', name));
      const t = await label(labelFile(dir, name));
      if (a.width !== b.width || a.height !== b.height || a.width !== t.width || a.height !== t.height) {
        throw new BadInputError(
          'bad_dataset',
          `${name}: A ${a.width}×${a.height}, B ${b.width}×${b.height}, label ${t.width}×${t.height} differ`,
        );
      }
      const r = await detectTile({
        after: source(name, b, gsdM),
        baselines: [{ source: source(name, a, gsdM) }],
        model,
      });
      const measure = (at: number) => {
        const pred = binary(r.probability, at);
        const p = pixelCounts(pred, t.data);
        if (r.interior && opts.splitObjects !== false)
          splitTouching(pred, r.interior, a.width, a.height, { threshold: interiorThreshold });
        if (opts.minAreaM2) removeSmallRegions(pred, a.width, a.height, Math.ceil(opts.minAreaM2 / (gsdM * gsdM)));
        return { p, o: objectCounts(pred, t.data, a.width, a.height, { pixelAreaM2: gsdM * gsdM, largeAreaM2: 50 }) };
      };
      const { p, o } = measure(threshold);
      images.push({ name, ...summarise(p, o) });
      px = addPixel(px, p);
      obj = addObject(obj, o);
      for (const [k, at] of sweepAt.entries()) {
        const m = at === threshold ? { p, o } : measure(at);
        sweepPx[k] = addPixel(sweepPx[k], m.p);
        sweepObj[k] = addObject(sweepObj[k], m.o);
      }
      releaseProbability(r);
    }
  } finally {
    await model.close();
  }
  return {
    dataset: dir,
    model: `${model.manifest.name} ${model.manifest.version}`,
    threshold,
    split: Boolean(model.manifest.interior) && opts.splitObjects !== false,
    images,
    total: summarise(px, obj),
    sweep: sweepAt.map((at, k) => ({ threshold: at, ...summarise(sweepPx[k], sweepObj[k]) })),
  };
}

export function evalText(r: EvalResult): string {
  const f = (v: number | null) => (v === null ? '  -  ' : v.toFixed(3));
  const lines = [
    `${r.dataset} — model ${r.model}, threshold ${r.threshold}`,
    'image                              P      R      F1     IoU    objP   objR   objF1  objR≥50m²',
  ];
  const row = (name: string, s: ReturnType<typeof summarise>) =>
    `${name.padEnd(32).slice(0, 32)}  ${f(s.pixel.precision)}  ${f(s.pixel.recall)}  ${f(s.pixel.f1)}  ${f(s.pixel.iou)}  ${f(s.object.precision)}  ${f(s.object.recall)}  ${f(s.object.f1)}  ${f(s.object.recallLarge)}`;
  for (const i of r.images) lines.push(row(i.name, i));
  lines.push(row('TOTAL', r.total));
  lines.push(
    '',
    `threshold sweep (all images; objects ${r.split ? 'split at the interior seeds' : 'as 8-connected regions'})`,
    'threshold                          P      R      F1     IoU    objP   objR   objF1  objR≥50m²',
  );
  for (const s of r.sweep) lines.push(row(s.threshold.toFixed(2) + (s.threshold === r.threshold ? ' *' : ''), s));
  return lines.join('\n');
}
