/**
 * What scripts/bench-real.ts prints: the figures as one value (its --json), and the same as text.
 */
import type { ModelAlone } from './bench.model-alone.ts';

/** One image's tally (sql/bench/real_scores.sql), or the total; `image` null: patches outside every footprint. */
export interface ImageScore {
  image: string | null;
  km2: number;
  buildings: number;
  found: number;
  patches: number;
  truePatches: number;
}

export interface RealBenchResult {
  command: string;
  /** TUBAN_* variables set in the environment (they change what the batch does). */
  environment: Record<string, string>;
  model: { dir: string; name: string; version: string; threshold: number };
  images: string[];
  /** The images of the split's validation set among them: never trained on. */
  validationImages: string[];
  /** The scenes the images were warped into (one per image, or mosaics of touching images). */
  scenes: string[];
  batch: { id: number; status: string; tiles: number; failedTiles: number; changePolygons: number; patches: number };
  km2: number;
  currentMpx: number;
  cores: number;
  wallS: number;
  mpxPerS: number;
  mpxPerSPerCore: number;
  km2PerH: number;
  km2PerHPerCore: number;
  /** Seconds outside the batch: GDAL, registering the imagery (with its previews), tracing the labels, scoring. */
  prepareS: Record<string, number>;
  /** Seconds per batch stage, summed over the parts (diff, match and emit once). */
  stagesS: Record<string, number>;
  /** The model alone on the batch's windows (scripts/bench.model-alone.ts), null when it could not be timed. */
  modelAlone: ModelAlone | null;
  /** With --remote: what the batch read from the server (both months), and the parts it read it for. */
  remote: { kind: string; requests: number; mb: number; cachedMb: number; filesMb: number; parts: number } | null;
  perImage: ImageScore[];
  total: ImageScore;
  /** The validation images' rows added up. */
  validationTotal: ImageScore;
  /** Share of buildings found, and of patches true (0–1; null when there are none). */
  foundShare: number | null;
  trueShare: number | null;
}

/** The figures of the per-image rows added up. */
export function totalOf(rows: ImageScore[]): ImageScore {
  const sum = (k: 'km2' | 'buildings' | 'found' | 'patches' | 'truePatches') => rows.reduce((a, r) => a + r[k], 0);
  return {
    image: 'total',
    km2: sum('km2'),
    buildings: sum('buildings'),
    found: sum('found'),
    patches: sum('patches'),
    truePatches: sum('truePatches'),
  };
}

export const share = (part: number, whole: number): number | null => (whole > 0 ? part / whole : null);

const pct = (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(1)} %`);

/** The report as lines of text. */
export function reportText(r: RealBenchResult): string {
  const lines: string[] = [];
  lines.push(`command: ${r.command}`);
  if (Object.keys(r.environment).length)
    lines.push(
      `environment: ${Object.entries(r.environment)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  lines.push(`model: ${r.model.name} ${r.model.version} (${r.model.dir}), threshold ${r.model.threshold}`);
  lines.push(`images (${r.images.length}): ${r.images.join(', ')}`);
  if (r.scenes.length !== r.images.length) lines.push(`scenes (${r.scenes.length}): ${r.scenes.join(', ')}`);
  const trained = r.images.length - r.validationImages.length;
  if (trained)
    lines.push(
      `${trained} of the images (marked *) are not in the split's validation set: the model may have been trained on them`,
    );
  lines.push(
    `covered: ${r.km2.toFixed(3)} km² (LEVIR-CD footprints on the ellipsoid); current month ${r.currentMpx.toFixed(1)} Mpx after the warp to UTM 14N at 0.5 m`,
  );
  lines.push(
    `prepare: ${Object.entries(r.prepareS)
      .map(([k, v]) => `${k} ${v.toFixed(1)} s`)
      .join(', ')}`,
  );
  const b = r.batch;
  lines.push(
    `batch ${b.id}: ${b.status}; ${b.tiles} tiles (${b.failedTiles} failed), ${b.changePolygons} change polygons, ${b.patches} new patches`,
  );
  lines.push(
    `wall ${r.wallS.toFixed(1)} s on ${r.cores} cores → ${r.mpxPerS.toFixed(3)} Mpx/s (${r.mpxPerSPerCore.toFixed(3)} per core), ${r.km2PerH.toFixed(1)} km²/h (${r.km2PerHPerCore.toFixed(1)} per core)`,
  );
  if (r.remote)
    lines.push(
      `read over ${r.remote.kind}: ${r.remote.requests} requests (${(r.remote.requests / r.remote.parts).toFixed(1)} per part, ${r.remote.parts} parts), ${r.remote.mb.toFixed(1)} MB of the scenes' ${r.remote.filesMb.toFixed(1)} MB (${(r.remote.mb / r.currentMpx).toFixed(2)} MB per Mpx of the current month, both months read), ${r.remote.cachedMb.toFixed(1)} MB more from the block cache`,
    );
  lines.push('', 'stage                         seconds   share of wall');
  let staged = 0;
  for (const [name, s] of Object.entries(r.stagesS)) {
    staged += s;
    lines.push(`${name.padEnd(30)}${s.toFixed(2).padStart(8)}   ${((100 * s) / r.wallS).toFixed(1).padStart(5)} %`);
  }
  lines.push(
    `${'queues, job start, other'.padEnd(30)}${(r.wallS - staged).toFixed(2).padStart(8)}   ${((100 * (r.wallS - staged)) / r.wallS).toFixed(1).padStart(5)} %`,
  );
  lines.push(
    '',
    `everything but inference: ${((100 * (r.wallS - (r.stagesS.inference ?? 0))) / r.wallS).toFixed(1)} % of the wall time; diff: ${((100 * (r.stagesS['diff (PostGIS)'] ?? 0)) / r.wallS).toFixed(1)} %`,
  );
  if (r.modelAlone)
    lines.push(
      `the model alone on the batch's ${r.modelAlone.windowMpx.toFixed(1)} MP of windows (${r.modelAlone.msPerMpx.toFixed(0)} ms/MP; ${r.modelAlone.sizes}, timed on a pair of these scenes): ${r.modelAlone.seconds.toFixed(2)} s; the wall time beyond it: ${((100 * (r.wallS - r.modelAlone.seconds)) / r.wallS).toFixed(1)} %`,
    );
  lines.push(
    '',
    'found: truth buildings ≥ 50 % covered by the patches; true: patches ≥ 50 % on buildings, or covering ≥ 50 % of one',
  );
  lines.push(
    `${'image'.padEnd(16)}${'km²'.padStart(7)}${'buildings'.padStart(11)}${'found'.padStart(7)}${'% found'.padStart(9)}${'patches'.padStart(9)}${'true'.padStart(6)}${'% true'.padStart(9)}`,
  );
  const mark = (image: string | null) =>
    image === null
      ? '(outside)'
      : trained && r.images.includes(image) && !r.validationImages.includes(image)
        ? `${image} *`
        : image;
  const row = (s: ImageScore) =>
    `${mark(s.image).padEnd(16)}${s.km2.toFixed(3).padStart(7)}${String(s.buildings).padStart(11)}${String(s.found).padStart(7)}${pct(share(s.found, s.buildings)).padStart(9)}` +
    `${String(s.patches).padStart(9)}${String(s.truePatches).padStart(6)}${pct(share(s.truePatches, s.patches)).padStart(9)}`;
  for (const s of r.perImage) lines.push(row(s));
  if (trained && r.validationImages.length) lines.push(row({ ...r.validationTotal, image: 'validation' }));
  lines.push(row(r.total));
  return lines.join('\n');
}
