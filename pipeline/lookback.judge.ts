/**
 * 回头看 (looking back): whether a structure ordered demolished is still there, judged from the change
 * model run over its footprint between the month it was detected in (when it stood) and the month
 * being judged. Where it is gone, the model sees the change it was made to see — land in one month, a
 * building in the other — over the footprint; where it still stands, it sees little. The pure part:
 * the footprint on the pixel grid, and the verdict from the probabilities under it.
 */

export const LOOKBACK_RESULTS = ['gone', 'standing', 'unclear', 'no_imagery'] as const;
export type LookbackResult = (typeof LOOKBACK_RESULTS)[number];

/** Where the mean change probability over a footprint says gone (≥ goneAt) or standing (≤ standingAt). */
export interface LookbackThresholds {
  goneAt: number;
  standingAt: number;
}

/**
 * A footprint is judged only where both months have data over at least this share of it: a verdict on
 * the sliver of a building at a scene's edge, or under a nodata collar, would be a guess.
 */
export const MIN_VALID_SHARE = 0.5;

export interface FootprintJudgement {
  result: LookbackResult;
  /** Mean change probability over the footprint's valid pixels (null without any). */
  score: number | null;
  /** Share of the footprint's pixels valid in both months. */
  validShare: number;
  /** Pixels of the footprint on the grid. */
  footprintPx: number;
}

/**
 * Polygons (rings of [col, row] in pixel-corner coordinates of a widthPx × heightPx grid) as a mask:
 * 1 where a pixel's centre lies inside (even–odd, so holes stay out). A polygon smaller than a pixel
 * that no centre falls in marks the pixel under its first vertex, so every footprint has a pixel.
 */
export function rasterisePolygons(polygons: number[][][][], widthPx: number, heightPx: number): Uint8Array {
  const mask = new Uint8Array(widthPx * heightPx);
  const xs: number[] = [];
  let any = false;
  for (let row = 0; row < heightPx; row++) {
    const y = row + 0.5;
    xs.length = 0;
    for (const poly of polygons)
      for (const ring of poly)
        for (let k = 0; k + 1 < ring.length; k++) {
          const [x0, y0] = ring[k],
            [x1, y1] = ring[k + 1];
          // half-open in y, so a vertex on the scanline is counted once
          if (y0 <= y !== y1 <= y) xs.push(x0 + ((y - y0) / (y1 - y0)) * (x1 - x0));
        }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      // pixels whose centre c + 0.5 lies in [xs[k], xs[k + 1])
      const c0 = Math.max(0, Math.ceil(xs[k] - 0.5)),
        c1 = Math.min(widthPx, Math.ceil(xs[k + 1] - 0.5));
      if (c1 > c0) {
        mask.fill(1, row * widthPx + c0, row * widthPx + c1);
        any = true;
      }
    }
  }
  const first = polygons[0]?.[0]?.[0];
  if (!any && first) {
    const col = Math.floor(first[0]),
      row = Math.floor(first[1]);
    if (col >= 0 && col < widthPx && row >= 0 && row < heightPx) mask[row * widthPx + col] = 1;
  }
  return mask;
}

/**
 * The verdict on one footprint: `no_imagery` where less than MIN_VALID_SHARE of it has data in both
 * months, else `gone` / `standing` / `unclear` by the mean change probability over its valid pixels.
 */
export function judgeFootprint(
  probability: Float32Array,
  valid: Uint8Array,
  footprint: Uint8Array,
  t: LookbackThresholds,
): FootprintJudgement {
  let n = 0,
    nValid = 0,
    sum = 0;
  for (let i = 0; i < footprint.length; i++) {
    if (!footprint[i]) continue;
    n++;
    if (!valid[i]) continue;
    nValid++;
    sum += probability[i];
  }
  const validShare = n ? nValid / n : 0;
  const score = nValid ? sum / nValid : null;
  if (score === null || validShare < MIN_VALID_SHARE)
    return { result: 'no_imagery', score, validShare, footprintPx: n };
  const result = score >= t.goneAt ? 'gone' : score <= t.standingAt ? 'standing' : 'unclear';
  return { result, score, validShare, footprintPx: n };
}
