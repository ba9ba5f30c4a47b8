import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { BadInputError } from '../../core/errors.ts';
import { formatIssues } from '../../core/issues.ts';

/** `models/<name>/manifest.json`: everything needed to feed a change model and read its output. */
const ModelManifestSchema = z.object({
  name: z.string().min(1),
  version: z.string().min(1),
  description: z.string().default(''),
  /** ONNX file, relative to the manifest's folder. */
  file: z.string().min(1),
  sha256: z.string().optional(),
  /** Graph input names for the before and after images (each float32 [batch, bands, height, width]). */
  inputs: z.object({ before: z.string(), after: z.string() }),
  /** Output tensor [batch, 1, height, width]: `probability` in 0..1 or `logits` (sigmoid applied here). */
  output: z.object({ name: z.string(), kind: z.enum(['probability', 'logits']) }),
  /**
   * Optional second output [batch, 1, height, width]: the probability that a pixel lies inside a
   * building (the change eroded by a few pixels). Its regions at `threshold` seed the split of
   * touching buildings into one patch each (mask.split.ts).
   */
  interior: z.object({ name: z.string(), threshold: z.number().gt(0).lt(1).default(0.5) }).optional(),
  /** Source band indices (0-based) fed to the model, in the model's order. */
  bands: z.object({ indices: z.array(z.number().int().min(0)).min(1), names: z.array(z.string()).optional() }),
  /** Applied to reflectance in 0..1: (x − mean[band]) / std[band]. */
  normalisation: z.object({ mean: z.array(z.number()), std: z.array(z.number().positive()) }),
  /**
   * What the graph's inputs hold: `float32`, reflectance already normalised as above, band by band
   * [batch, band, row, col]; or `uint8`, 8-bit samples 0..255 pixel-interleaved [batch, row, col,
   * band] as GeoTIFFs store them, which the graph transposes and normalises itself (rows are handed
   * over as read; wider samples are stretched to 8 bits first).
   */
  inputType: z.enum(['float32', 'uint8']).default('float32'),
  /** Window size the model was made for. */
  tileSizePx: z.number().int().min(16),
  /**
   * Largest window the pipeline may feed. When set, a part gets as few windows as cover it, up to
   * this size, spread evenly: a fully convolutional model gives the same answer inside any window,
   * and fewer, larger windows repeat less of the overlap. Without it, windows are exactly
   * tileSizePx, as a model with window-wide statistics (the CVA baseline's brightness matching) needs.
   */
  maxWindowPx: z.number().int().min(16).optional(),
  overlapPx: z.number().int().min(0),
  defaultThreshold: z.number().gt(0).lt(1),
  /**
   * Patches whose mean change probability (over their pixels, before the legal footprints are
   * subtracted) is below this are dropped in the diff: uncertain detections, most of them false
   * alarms. Optional; 0 keeps every patch. TUBAN_MIN_MEAN_PROB overrides it.
   */
  minMeanProbability: z.number().min(0).lt(1).optional(),
  /**
   * The same floor for patches on or against registered buildings (roofs bring false alarms of their
   * own: repainting, shadows, the lean of tall buildings); a relation not named takes
   * minMeanProbability. TUBAN_MIN_MEAN_PROB_EXTENSION / _ON_BUILDING override it.
   */
  minMeanProbabilityByRelation: z
    .object({ extension: z.number().min(0).lt(1).optional(), on_building: z.number().min(0).lt(1).optional() })
    .optional(),
  /** Ground sample distance the model was made for, in metres. */
  gsdM: z.number().positive(),
  provenance: z.record(z.string(), z.unknown()),
});

export type ModelManifest = z.infer<typeof ModelManifestSchema>;

export interface LoadedManifest {
  dir: string;
  manifest: ModelManifest;
  onnxPath: string;
}

export function loadManifest(modelDir: string): LoadedManifest {
  const dir = resolve(modelDir);
  const path = join(dir, 'manifest.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new BadInputError('model_manifest', `${path}: cannot read model manifest (${(err as Error).message})`, {
      file: path,
    });
  }
  const parsed = ModelManifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = formatIssues(parsed.error.issues);
    throw new BadInputError('model_manifest', `${path}: invalid model manifest — ${issues}`, { file: path });
  }
  const m = parsed.data;
  const n = m.bands.indices.length;
  if (m.normalisation.mean.length !== n || m.normalisation.std.length !== n) {
    throw new BadInputError(
      'model_manifest',
      `${path}: normalisation.mean/std need ${n} values (one per band), found ${m.normalisation.mean.length}/${m.normalisation.std.length}`,
      { file: path },
    );
  }
  if (m.maxWindowPx !== undefined && m.maxWindowPx < m.tileSizePx)
    throw new BadInputError(
      'model_manifest',
      `${path}: maxWindowPx ${m.maxWindowPx} must not be smaller than tileSizePx ${m.tileSizePx}`,
      { file: path },
    );
  if (m.overlapPx >= m.tileSizePx)
    throw new BadInputError(
      'model_manifest',
      `${path}: overlapPx ${m.overlapPx} must be smaller than tileSizePx ${m.tileSizePx}`,
      { file: path },
    );
  return { dir, manifest: m, onnxPath: join(dir, m.file) };
}
