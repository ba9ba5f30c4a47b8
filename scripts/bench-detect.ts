/**
 * Benchmark: change-model inference through onnxruntime-node on this machine's CPU, for each model
 * folder given (default: models/siam-unet-lite and models/cva-baseline side by side, in one run).
 * Prints megapixels per second for the bare model on 512² windows and for `detectTile` on a
 * 2048² scene (windows, overlap blending, normalisation included). Not a test: numbers depend on
 * the machine.
 *
 *   npx tsx scripts/bench-detect.ts [--threads 2] [--size 2048] [--seconds 5] [MODEL_DIR ...]
 */
import { cpus } from 'node:os';
import { crs } from '../core/crs.ts';
import { detectTile } from '../pipeline/detect.tile.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { MemorySource, type RasterInfo } from '../pipeline/raster.source.ts';
import { mulberry32 } from './prng.ts';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(argv.splice(i, 2)[1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`${name} needs a positive number`);
  return v;
};
const threads = opt('--threads', 2);
const size = opt('--size', 2048);
const seconds = opt('--seconds', 5);
const models = argv.length ? argv : ['models/siam-unet-lite', 'models/cva-baseline'];

function scene(seed: number): MemorySource {
  const rnd = mulberry32(seed);
  const n = size * size;
  const bands = [0, 1, 2].map(() => new Uint8Array(n));
  for (let i = 0; i < n; i++) {
    const v = 90 + (((i % size) >> 5) % 7) * 10 + Math.floor(rnd() * 30);
    for (const b of bands) b[i] = v;
  }
  const info: RasterInfo = {
    file: `scene-${seed}`,
    widthPx: size,
    heightPx: size,
    bandCount: 3,
    sampleType: 'uint8',
    nodata: null,
    crs: crs(4548, false),
    geoTransform: [0, 0.5, 0, 0, 0, -0.5],
  };
  return new MemorySource(info, bands);
}

console.log(`${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores; onnxruntime intra-op threads ${threads}`);
const before = scene(1),
  after = scene(2);
for (const dir of models) {
  const model = await OnnxChangeModel.load(dir, { intraOpThreads: threads });
  const win = model.manifest.tileSizePx;
  const x =
    model.manifest.inputType === 'uint8'
      ? new Uint8Array(3 * win * win).fill(128)
      : new Float32Array(3 * win * win).fill(0.5);
  await model.run(x, x, 1, win, win);
  let k = 0;
  let computeMs = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    computeMs += (await model.run(x, x, 1, win, win)).computeMs ?? 0;
    k++;
  }
  const bare = (k * win * win) / 1e6 / ((performance.now() - t0) / 1000);
  const t1 = performance.now();
  await detectTile({ after, baselines: [{ source: before }], model });
  const tile = (size * size) / 1e6 / ((performance.now() - t1) / 1000);
  console.log(
    `${model.manifest.name} ${model.manifest.version}: bare model ${bare.toFixed(2)} MP/s on ${win}² windows (${((k * win * win) / 1e3 / computeMs).toFixed(2)} MP/s in onnxruntime's own time); detectTile ${tile.toFixed(2)} MP/s on ${size}² (windows of ≤ ${model.manifest.maxWindowPx ?? win} px, overlap ≥ ${model.manifest.overlapPx} px)`,
  );
  await model.close();
}
