import { arrayPool } from './array.pool.ts';
import { labelRuns } from './mask.runs.ts';

export interface SplitOptions {
  /** Interior probability at or above which a change pixel is a seed. Default 0.5. */
  threshold?: number;
  /** Seeds smaller than this many pixels are ignored (noise would split one roof in two). Default 6. */
  minSeedPx?: number;
}

/**
 * Splits touching buildings in a change mask, in place, with the model's building-interior output
 * as seeds (a marker-controlled watershed, as building extraction does it: SpaceNet's winners
 * split their masks the same way).
 *
 * Seeds are the 8-connected regions of change pixels whose interior probability reaches the
 * threshold. Each seed grows through the change pixels of its region, breadth first, so every
 * change pixel goes to the nearest seed within the mask; then every pixel that touches (in 8
 * directions) a pixel of a seed with a lower number is cleared. What is left is one 8-connected
 * region per seed, so tracing gives one polygon per building. Regions without a seed stay as they are.
 * Returns how many pixels were cleared.
 */
export function splitTouching(
  mask: Uint8Array,
  interior: Float32Array,
  width: number,
  height: number,
  opts: SplitOptions = {},
): number {
  const n = width * height;
  if (mask.length !== n || interior.length !== n)
    throw new Error(
      `splitTouching: mask ${mask.length} and interior ${interior.length} values for ${width} × ${height}`,
    );
  const threshold = opts.threshold ?? 0.5;
  const minSeedPx = opts.minSeedPx ?? 6;
  const seeds = arrayPool.take(Uint8Array, n);
  let any = false;
  for (let i = 0; i < n; i++) {
    const s = mask[i] !== 0 && interior[i] >= threshold ? 1 : 0;
    seeds[i] = s;
    if (s) any = true;
  }
  if (!any) {
    arrayPool.give(seeds);
    return 0;
  }
  // seed ids per pixel (0: none), 1-based, in order of first appearance
  const label = arrayPool.take(Int32Array, n, true);
  const runs = labelRuns(seeds, width, height);
  arrayPool.give(seeds);
  const size = new Map<number, number>();
  for (let r = 0; r < runs.count; r++)
    size.set(runs.root8[r], (size.get(runs.root8[r]) ?? 0) + runs.endX[r] - runs.startX[r]);
  const idOf = new Map<number, number>();
  const queue = arrayPool.take(Int32Array, n);
  let tail = 0;
  for (let r = 0; r < runs.count; r++) {
    const root = runs.root8[r];
    if ((size.get(root) ?? 0) < minSeedPx) continue;
    let id = idOf.get(root);
    if (id === undefined) idOf.set(root, (id = idOf.size + 1));
    const base = runs.row[r] * width;
    for (let x = runs.startX[r]; x < runs.endX[r]; x++) {
      label[base + x] = id;
      queue[tail++] = base + x;
    }
  }
  if (idOf.size < 2) {
    arrayPool.give(label, queue);
    return 0;
  }
  // breadth-first growth through the mask (4-neighbours: geodesic distance inside the region)
  for (let head = 0; head < tail; head++) {
    const i = queue[head];
    const id = label[i];
    const x = i % width;
    if (x > 0 && mask[i - 1] && !label[i - 1]) {
      label[i - 1] = id;
      queue[tail++] = i - 1;
    }
    if (x + 1 < width && mask[i + 1] && !label[i + 1]) {
      label[i + 1] = id;
      queue[tail++] = i + 1;
    }
    if (i >= width && mask[i - width] && !label[i - width]) {
      label[i - width] = id;
      queue[tail++] = i - width;
    }
    if (i + width < n && mask[i + width] && !label[i + width]) {
      label[i + width] = id;
      queue[tail++] = i + width;
    }
  }
  // clear the pixels of each seed's region that touch a region of a lower seed
  let cleared = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = y * width + x;
      const id = label[i];
      if (id <= 1) continue;
      let cut = false;
      for (let dy = -1; dy <= 1 && !cut; dy++) {
        const yy = y + dy;
        if (yy < 0 || yy >= height) continue;
        for (let dx = -1; dx <= 1; dx++) {
          const xx = x + dx;
          if (xx < 0 || xx >= width || (dx === 0 && dy === 0)) continue;
          const o = label[yy * width + xx];
          if (o !== 0 && o < id) {
            cut = true;
            break;
          }
        }
      }
      if (cut) {
        mask[i] = 0;
        cleared++;
      }
    }
  }
  arrayPool.give(label, queue);
  return cleared;
}

/** Clears the 8-connected regions of `mask` smaller than `minPx` pixels, in place (the pipeline drops such pieces too); returns how many went. */
export function removeSmallRegions(mask: Uint8Array, width: number, height: number, minPx: number): number {
  if (minPx <= 1) return 0;
  const runs = labelRuns(mask, width, height);
  const size = new Map<number, number>();
  for (let r = 0; r < runs.count; r++)
    size.set(runs.root8[r], (size.get(runs.root8[r]) ?? 0) + runs.endX[r] - runs.startX[r]);
  let removed = 0;
  for (const n of size.values()) if (n < minPx) removed++;
  if (!removed) return 0;
  for (let r = 0; r < runs.count; r++) {
    if ((size.get(runs.root8[r]) ?? 0) < minPx)
      mask.fill(0, runs.row[r] * width + runs.startX[r], runs.row[r] * width + runs.endX[r]);
  }
  return removed;
}
