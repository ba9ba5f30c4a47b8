import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { extname, join, basename } from 'node:path';
import sharp from 'sharp';
import { crs } from '../pipeline/crs.ts';
import { detectTile } from '../pipeline/detect.tile.ts';
import { BadInputError } from '../pipeline/errors.ts';
import { addObject, addPixel, objectCounts, pixelCounts, summarise, type ObjectCounts, type PixelCounts } from '../pipeline/metrics.ts';
import { OnnxChangeModel } from '../pipeline/model.onnx.ts';
import { MemorySource, type RasterInfo } from '../pipeline/raster.source.ts';

const IMAGE = /\.(png|jpe?g|tif{1,2})$/i;

/** Image names of a change-detection dataset: `list/*.txt` when present, else the files of `A/` that have a B and a label. */
export function datasetNames(dir: string): string[] {
  for (const sub of ['A', 'B', 'label']) if (!existsSync(join(dir, sub))) throw new BadInputError('bad_dataset', `${dir}: no ${sub}/ folder (expected A/, B/ and label/)`);
  const listDir = join(dir, 'list');
  if (existsSync(listDir)) {
    const names = readdirSync(listDir).filter((f) => f.endsWith('.txt')).flatMap((f) => readFileSync(join(listDir, f), 'utf8').split(/\r?\n/)).map((s) => s.trim()).filter(Boolean);
    if (names.length) return [...new Set(names)].sort();
  }
  return readdirSync(join(dir, 'A')).filter((f) => IMAGE.test(f)).sort();
}

function labelFile(dir: string, name: string): string {
  const stem = basename(name, extname(name));
  const exact = join(dir, 'label', name);
  if (existsSync(exact)) return exact;
  const alt = readdirSync(join(dir, 'label')).find((f) => basename(f, extname(f)) === stem);
  if (!alt) throw new BadInputError('bad_dataset', `${dir}: no label for ${name}`);
  return join(dir, 'label', alt);
}

async function rgb(path: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(path).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new BadInputError('bad_dataset', `${path}: ${info.channels} channels after conversion, expected 3`);
  return { data, width: info.width, height: info.height };
}

/** Labels are 0 = no change, 255 = change; JPEG noise is cut at 127 (not at > 0). */
async function label(path: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(path).greyscale().raw().toBuffer({ resolveWithObject: true });
  return { data: Uint8Array.from(data, (v) => (v > 127 ? 1 : 0)), width: info.width, height: info.height };
}

function source(name: string, img: { data: Buffer; width: number; height: number }, gsdM: number): MemorySource {
  const n = img.width * img.height;
  const bands = [0, 1, 2].map((b) => Uint8Array.from({ length: n }, (_, i) => img.data[i * 3 + b]));
  const info: RasterInfo = { file: name, widthPx: img.width, heightPx: img.height, bandCount: 3, sampleType: 'uint8', nodata: null, crs: crs(3857, false), geoTransform: [0, gsdM, 0, 0, 0, -gsdM] };
  return new MemorySource(info, bands);
}

export interface EvalResult {
  dataset: string;
  model: string;
  threshold: number;
  images: ({ name: string } & ReturnType<typeof summarise>)[];
  total: ReturnType<typeof summarise>;
}

/** Pixel and object metrics of a change model on a labelled dataset (A/, B/, label/). */
export async function evaluateDataset(dir: string, modelDir: string, opts: { threshold?: number; gsdM?: number } = {}): Promise<EvalResult> {
  const model = await OnnxChangeModel.load(modelDir);
  const threshold = opts.threshold ?? model.manifest.defaultThreshold;
  const gsdM = opts.gsdM ?? model.manifest.gsdM;
  let px: PixelCounts = { tp: 0, fp: 0, fn: 0, tn: 0 };
  let obj: ObjectCounts = { truth: 0, found: 0, truthLarge: 0, foundLarge: 0, predicted: 0, matched: 0 };
  const images: EvalResult['images'] = [];
  try {
    for (const name of datasetNames(dir)) {
      const a = await rgb(join(dir, 'A', name));
      const b = await rgb(join(dir, 'B', name));
      const t = await label(labelFile(dir, name));
      if (a.width !== b.width || a.height !== b.height || a.width !== t.width || a.height !== t.height) {
        throw new BadInputError('bad_dataset', `${name}: A ${a.width}×${a.height}, B ${b.width}×${b.height}, label ${t.width}×${t.height} differ`);
      }
      const r = await detectTile({ after: source(name, b, gsdM), baselines: [{ source: source(name, a, gsdM) }], model });
      const pred = Uint8Array.from(r.probability, (p) => (p >= threshold ? 1 : 0));
      const p = pixelCounts(pred, t.data);
      const o = objectCounts(pred, t.data, a.width, a.height, { pixelAreaM2: gsdM * gsdM, largeAreaM2: 50 });
      images.push({ name, ...summarise(p, o) });
      px = addPixel(px, p);
      obj = addObject(obj, o);
    }
  } finally {
    await model.close();
  }
  return { dataset: dir, model: `${model.manifest.name} ${model.manifest.version}`, threshold, images, total: summarise(px, obj) };
}

export function evalText(r: EvalResult): string {
  const f = (v: number | null) => (v === null ? '  -  ' : v.toFixed(3));
  const lines = [`${r.dataset} — model ${r.model}, threshold ${r.threshold}`, 'image                              P      R      F1     IoU    objP   objR   objF1  objR≥50m²'];
  const row = (name: string, s: ReturnType<typeof summarise>) => `${name.padEnd(32).slice(0, 32)}  ${f(s.pixel.precision)}  ${f(s.pixel.recall)}  ${f(s.pixel.f1)}  ${f(s.pixel.iou)}  ${f(s.object.precision)}  ${f(s.object.recall)}  ${f(s.object.f1)}  ${f(s.object.recallLarge)}`;
  for (const i of r.images) lines.push(row(i.name, i));
  lines.push(row('TOTAL', r.total));
  return lines.join('\n');
}
