/**
 * Writes models/cva-baseline/: a classical change-vector-analysis (CVA) detector as an ONNX graph.
 *
 *   1. Relative radiometric normalisation: each band of the after image is shifted by the
 *      clipped mean difference to the before image over the window (removes global brightness
 *      shifts between acquisitions without letting the changes themselves bias the estimate).
 *   2. 3 × 3 mean filter on both dates against sensor noise.
 *   3. Misregistration tolerance: the after pixel is compared with the min/max envelope of the
 *      before image over a (2r+1)² neighbourhood, so an edge shifted by ≤ r px yields no change
 *      (the neighbourhood-based CVA of e.g. Bovolo & Bruzzone's CVA family).
 *   4. Euclidean norm over bands, 5 × 5 mean filter, calibrated sigmoid → probability.
 *
 * Run: npm run model:cva   (deterministic; rewrites model.onnx and manifest.json)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GraphBuilder } from './onnx.graph.ts';

/** Neighbourhood radius in pixels tolerated as misregistration (2 px = 1 m at 0.5 m GSD). */
const REGISTRATION_RADIUS_PX = 2;
/** Largest per-pixel difference counted when estimating the brightness offset (reflectance units). */
const OFFSET_CLIP = 0.08;
/** Sigmoid centre and slope on the colour distance (reflectance units 0..1). Chosen on the
 * fixtures and the LEVIR-CD development pairs: a new roof differs by ≥ 0.15, while haze,
 * season and residual shifts mostly stay below 0.08 after normalisation. */
const DISTANCE_CENTRE = 0.1;
const DISTANCE_SLOPE = 40;

export function buildCvaGraph(): GraphBuilder {
  const g = new GraphBuilder();
  const mean = (x: string) => g.op('ReduceMean', [x], { axes: [2, 3], keepdims: 1 });
  // Offset matching with a clipped mean of the difference: real changes contribute at most
  // ±OFFSET_CLIP each, so a new building filling part of the window barely moves the estimate,
  // while a global shift is recovered exactly (two passes cover shifts up to 2 × OFFSET_CLIP).
  const lo = g.constant('clip_lo', [-OFFSET_CLIP], []);
  const hi = g.constant('clip_hi', [OFFSET_CLIP], []);
  const offsetStep = (a: string) => mean(g.op('Clip', [g.op('Sub', [a, 'before']), lo, hi]));
  const pass1 = g.op('Sub', ['after', offsetStep('after')]);
  const afterMatched = g.op('Sub', [pass1, offsetStep(pass1)]);
  const smooth = (x: string, k: number) =>
    g.op('AveragePool', [x], {
      kernel_shape: [k, k],
      pads: [(k - 1) / 2, (k - 1) / 2, (k - 1) / 2, (k - 1) / 2],
      strides: [1, 1],
      count_include_pad: 0,
    });
  const b = smooth('before', 3);
  const a = smooth(afterMatched, 3);
  const k = 2 * REGISTRATION_RADIUS_PX + 1;
  const r = REGISTRATION_RADIUS_PX;
  const maxPool = (x: string) => g.op('MaxPool', [x], { kernel_shape: [k, k], pads: [r, r, r, r], strides: [1, 1] });
  const bMax = maxPool(b);
  const bMin = g.op('Neg', [maxPool(g.op('Neg', [b]))]);
  const above = g.op('Relu', [g.op('Sub', [a, bMax])]);
  const below = g.op('Relu', [g.op('Sub', [bMin, a])]);
  const perBand = g.op('Add', [above, below]);
  const dist = g.op('Sqrt', [
    g.op('Add', [g.op('ReduceSumSquare', [perBand], { axes: [1], keepdims: 1 }), g.constant('eps2', [1e-8], [])]),
  ]);
  const distSmooth = smooth(dist, 5);
  const z = g.op('Mul', [
    g.op('Sub', [distSmooth, g.constant('centre', [DISTANCE_CENTRE], [])]),
    g.constant('slope', [DISTANCE_SLOPE], []),
  ]);
  g.op('Sigmoid', [z], {}, 'probability');
  return g;
}

function main(): void {
  const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'models', 'cva-baseline');
  mkdirSync(dir, { recursive: true });
  const bytes = buildCvaGraph().encode({
    inputs: [
      { name: 'before', channels: 3 },
      { name: 'after', channels: 3 },
    ],
    outputs: [{ name: 'probability', channels: 1 }],
    opset: 17,
    producer: 'tuban-cva-baseline',
    docString: 'Change vector analysis with radiometric normalisation and misregistration envelope',
    metadata: {
      registration_radius_px: String(REGISTRATION_RADIUS_PX),
      distance_centre: String(DISTANCE_CENTRE),
      distance_slope: String(DISTANCE_SLOPE),
    },
  });
  writeFileSync(join(dir, 'model.onnx'), bytes);
  const manifest = {
    name: 'cva-baseline',
    version: '1.0.0',
    description: 'Classical change vector analysis expressed as an ONNX graph: an honest, untrained baseline.',
    file: 'model.onnx',
    sha256: createHash('sha256').update(bytes).digest('hex'),
    inputs: { before: 'before', after: 'after' },
    output: { name: 'probability', kind: 'probability' },
    bands: { indices: [0, 1, 2], names: ['red', 'green', 'blue'] },
    normalisation: { mean: [0, 0, 0], std: [1, 1, 1] },
    tileSizePx: 512,
    overlapPx: 64,
    defaultThreshold: 0.5,
    gsdM: 0.5,
    provenance: {
      kind: 'generated',
      script: 'scripts/make-cva-model.ts',
      trainingData: 'none (parameters set by hand)',
      parameters: {
        offsetClip: OFFSET_CLIP,
        registrationRadiusPx: REGISTRATION_RADIUS_PX,
        distanceCentre: DISTANCE_CENTRE,
        distanceSlope: DISTANCE_SLOPE,
      },
    },
  };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  console.log(`wrote ${join(dir, 'model.onnx')} (${bytes.length} bytes)`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
