/**
 * 回头看 (looking back): whether a structure ordered demolished is still there, judged from the
 * month's imagery against the month it was detected in (when it stood), over its footprint alone. The
 * change model is not asked: it finds buildings where their surroundings changed too (LEVIR-CD's new
 * neighbourhoods), and on a house demolished in a street that stayed as it was it answers 0.000 (the
 * median over 164 demolitions in scripts/bench-followup.ts). The pixels are: the later month's light
 * matched to the earlier's over the surroundings, the two registered on the ring around the footprint
 * (which stands still whatever happened to the structure), then the footprint's difference against the
 * ring's and the correlation of its texture. A roof still standing differs as little as the ground around
 * it and keeps its texture; where it was demolished, the footprint differs more than its surroundings
 * and its texture is gone.
 */

export const LOOKBACK_RESULTS = ['gone', 'standing', 'unclear', 'no_imagery'] as const;
export type LookbackResult = (typeof LOOKBACK_RESULTS)[number];

/** The method's name and version, kept with every judgement (imagery_check.model_name / model_version). */
export const LOOKBACK_METHOD = { name: 'tuban-lookback', version: '1.0' } as const;

/** Where the disappearance score (0..1, lookbackScore) says gone (≥ goneAt) or standing (≤ standingAt). */
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
  /** The disappearance score 0..1 (null without data). */
  score: number | null;
  /** Share of the footprint's pixels valid in both months. */
  validShare: number;
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
 * How strongly the pixels say the structure is gone, 0..1: a logistic of the log of the footprint's
 * difference over its ring's (1: it changed as much as its surroundings) and of its texture
 * correlation, 5·ln(ratio) − 5·correlation − 1. Fitted on scripts/bench-followup.ts (139 demolitions and
 * 135 standing buildings on the LEVIR-CD validation scenes, and 23 real roofs standing a year apart
 * counted five times over) and rounded; fitted on either half of them, the other half was judged 99 %
 * right and none of its real roofs gone.
 */
export function lookbackScore(e: Pick<FootprintEvidence, 'diffIn' | 'diffRing' | 'corrIn'>): number {
  const ratio = e.diffIn / (e.diffRing + 0.01);
  const z = 5 * Math.log(Math.max(ratio, 1e-3)) - 5 * e.corrIn - 1;
  return 1 / (1 + Math.exp(-z));
}

/**
 * The verdict on one footprint: `no_imagery` where less than MIN_VALID_SHARE of it has data in both
 * months, else `gone` / `standing` / `unclear` by lookbackScore.
 */
export function judgeFootprint(e: FootprintEvidence, t: LookbackThresholds): FootprintJudgement {
  if (e.footprintPx === 0 || e.validShare < MIN_VALID_SHARE)
    return { result: 'no_imagery', score: null, validShare: e.validShare };
  const score = lookbackScore(e);
  const result = score >= t.goneAt ? 'gone' : score <= t.standingAt ? 'standing' : 'unclear';
  return { result, score, validShare: e.validShare };
}

/** What the two months' pixels say about one footprint, beside the change model (see footprintEvidence). */
export interface FootprintEvidence {
  /** Mean absolute difference inside the footprint (reflectance 0..1, bands averaged), the later month's light matched to the earlier's, at the best of small shifts. */
  diffIn: number;
  /** The same over a ring around it: how much an unchanged surface differs between the two dates. */
  diffRing: number;
  /** Correlation of the footprint's grey levels between the months, at the best shift (1: the same texture). */
  corrIn: number;
  /** Share of the footprint's pixels valid in both months. */
  validShare: number;
  footprintPx: number;
}

/** A 0/1 mask grown by `r` pixels (square structuring element), w × h: a running count along rows, then columns. */
export function dilate(mask: Uint8Array, w: number, h: number, r: number): Uint8Array {
  const rows = new Uint8Array(mask.length);
  for (let y = 0; y < h; y++) {
    const o = y * w;
    let count = 0;
    for (let x = 0; x < Math.min(r, w); x++) count += mask[o + x];
    for (let x = 0; x < w; x++) {
      if (x + r < w) count += mask[o + x + r];
      if (x - r - 1 >= 0) count -= mask[o + x - r - 1];
      rows[o + x] = count > 0 ? 1 : 0;
    }
  }
  const out = new Uint8Array(mask.length);
  for (let x = 0; x < w; x++) {
    let count = 0;
    for (let y = 0; y < Math.min(r, h); y++) count += rows[y * w + x];
    for (let y = 0; y < h; y++) {
      if (y + r < h) count += rows[(y + r) * w + x];
      if (y - r - 1 >= 0) count -= rows[(y - r - 1) * w + x];
      out[y * w + x] = count > 0 ? 1 : 0;
    }
  }
  return out;
}

/** How far the months may be misregistered around a footprint (px each way): orthoimages of two dates drift by a few metres where the terrain or the source differs. */
const REGISTER_PX = 16;
/** The ring around a footprint its difference is compared with: 3 to 10 px out (the footprint's walls and shadow left out). */
const RING_IN_PX = 3,
  RING_OUT_PX = 10;
/** Margin a window needs around a footprint for footprintEvidence: the surroundings the months are registered on. */
export const EVIDENCE_MARGIN_PX = 40;
/** A shift costs this much correlation per pixel, so a flat correlation surface gives the smaller shift. */
const SHIFT_COST = 0.004;

/**
 * The pixel evidence on one footprint: `ref` (the month the structure was found in) and `now` (the
 * month judged), band-separate reflectance on one w × h grid with `valid` marking pixels with data in
 * both. The later month's light is matched to the earlier's over the surroundings (everything but the
 * footprint grown by 3 px); the months are registered on the surroundings too (the shift up to
 * REGISTER_PX that correlates them best: they stand still whatever happened to the structure); at that
 * shift (± 1 px) the footprint's difference and texture correlation are measured, and the median
 * difference of the ring around it (a neighbour demolished too moves a median little) says what an
 * unchanged surface differs by.
 */
export function footprintEvidence(
  ref: Float32Array[],
  now: Float32Array[],
  valid: Uint8Array,
  footprint: Uint8Array,
  w: number,
  h: number,
): FootprintEvidence & { shift: [number, number] } {
  const inner = dilate(footprint, w, h, 1);
  const near = dilate(footprint, w, h, RING_IN_PX);
  const outer = dilate(footprint, w, h, RING_OUT_PX);
  const ring = new Uint8Array(w * h);
  const context = new Uint8Array(w * h);
  let n = 0,
    nValid = 0;
  for (let i = 0; i < w * h; i++) {
    if (footprint[i]) {
      n++;
      if (valid[i]) nValid++;
    }
    if (!valid[i] || near[i]) continue;
    context[i] = 1;
    if (outer[i]) ring[i] = 1;
  }
  // the later month's light, band by band, matched to the earlier's over the surroundings
  const matched = now.map((band, k) => {
    let m = 0,
      s1 = 0,
      q1 = 0,
      s2 = 0,
      q2 = 0;
    for (let i = 0; i < w * h; i++) {
      if (!context[i]) continue;
      m++;
      s1 += ref[k][i];
      q1 += ref[k][i] * ref[k][i];
      s2 += band[i];
      q2 += band[i] * band[i];
    }
    if (m < 16) return band;
    const m1 = s1 / m,
      m2 = s2 / m;
    const gain = Math.sqrt(Math.max(q1 / m - m1 * m1, 1e-6) / Math.max(q2 / m - m2 * m2, 1e-6));
    const out = new Float32Array(band.length);
    for (let i = 0; i < band.length; i++) out[i] = (band[i] - m2) * gain + m1;
    return out;
  });
  const greyRef = grey(ref, w * h),
    greyNow = grey(matched, w * h);
  const ringPx = pixelsOf(ring, valid, w),
    innerPx = pixelsOf(inner, valid, w),
    contextPx = pixelsOf(context, valid, w);
  const shift = bestShift(greyRef, greyNow, contextPx, valid, w, h);
  let diffIn = Infinity,
    corrIn = -1;
  for (let dy = shift[1] - 1; dy <= shift[1] + 1; dy++)
    for (let dx = shift[0] - 1; dx <= shift[0] + 1; dx++) {
      diffIn = Math.min(diffIn, meanAbsDiff(ref, matched, innerPx, valid, w, h, dx, dy));
      corrIn = Math.max(corrIn, correlation(greyRef, greyNow, innerPx, valid, w, h, dx, dy));
    }
  const diffRing = medianAbsDiff(ref, matched, ringPx, valid, w, h, shift[0], shift[1]);
  return {
    diffIn: Number.isFinite(diffIn) ? diffIn : 0,
    diffRing: Number.isFinite(diffRing) ? diffRing : 0,
    corrIn,
    validShare: n ? nValid / n : 0,
    footprintPx: n,
    shift,
  };
}

/**
 * The shift (up to REGISTER_PX each way) that correlates a(p) with b(p + shift) best over `px`, less
 * SHIFT_COST a pixel, found coarse to fine: on both images halved (2 × 2 means), every other shift,
 * then the neighbours of the best; then at full resolution the neighbours of that, over every other
 * pixel. About a third of the work of trying every other shift at full resolution.
 */
function bestShift(
  a: Float32Array,
  b: Float32Array,
  px: Int32Array,
  valid: Uint8Array,
  w: number,
  h: number,
): [number, number] {
  const hw = w >> 1,
    hh = h >> 1;
  const ha = halve(a, w, hw, hh),
    hb = halve(b, w, hw, hh);
  const hvalid = new Uint8Array(hw * hh);
  for (let y = 0; y < hh; y++)
    for (let x = 0; x < hw; x++) {
      const i = 2 * y * w + 2 * x;
      hvalid[y * hw + x] = valid[i] & valid[i + 1] & valid[i + w] & valid[i + w + 1];
    }
  const seen = new Uint8Array(hw * hh);
  const half: number[] = [];
  for (let p = 0; p < px.length; p += 2) {
    const x = px[p] >> 1,
      y = px[p + 1] >> 1;
    if (x >= hw || y >= hh) continue;
    const i = y * hw + x;
    if (!hvalid[i] || seen[i]) continue;
    seen[i] = 1;
    half.push(x, y);
  }
  const halfPx = Int32Array.from(half);
  const search = (
    img: [Float32Array, Float32Array, Uint8Array, number, number],
    on: Int32Array,
    cx: number,
    cy: number,
    reach: number,
    step: number,
    scale: number,
  ): [number, number] => {
    let best = -Infinity,
      at: [number, number] = [cx, cy];
    for (let dy = cy - reach; dy <= cy + reach; dy += step)
      for (let dx = cx - reach; dx <= cx + reach; dx += step) {
        const c =
          correlation(img[0], img[1], on, img[2], img[3], img[4], dx, dy) - SHIFT_COST * scale * Math.hypot(dx, dy);
        if (c > best) {
          best = c;
          at = [dx, dy];
        }
      }
    return at;
  };
  const halfImg: [Float32Array, Float32Array, Uint8Array, number, number] = [ha, hb, hvalid, hw, hh];
  const r = REGISTER_PX >> 1;
  let [sx, sy] = search(halfImg, halfPx, 0, 0, r, 2, 2);
  [sx, sy] = search(halfImg, halfPx, sx, sy, 1, 1, 2);
  return search([a, b, valid, w, h], everyNth(px, 2), 2 * sx, 2 * sy, 1, 1, 1);
}

/** An image (w wide) halved: each pixel the mean of a 2 × 2 block, hw × hh. */
function halve(img: Float32Array, w: number, hw: number, hh: number): Float32Array {
  const out = new Float32Array(hw * hh);
  for (let y = 0; y < hh; y++)
    for (let x = 0; x < hw; x++) {
      const i = 2 * y * w + 2 * x;
      out[y * hw + x] = (img[i] + img[i + 1] + img[i + w] + img[i + w + 1]) / 4;
    }
  return out;
}

/** The median over `px` of |a(p) − b(p + shift)| (bands averaged); Infinity without any. */
function medianAbsDiff(
  a: Float32Array[],
  b: Float32Array[],
  px: Int32Array,
  valid: Uint8Array,
  w: number,
  h: number,
  dx: number,
  dy: number,
): number {
  const d: number[] = [];
  for (let p = 0; p < px.length; p += 2) {
    const x = px[p] + dx,
      y = px[p + 1] + dy;
    if (x < 0 || y < 0 || x >= w || y >= h) continue;
    const i = px[p + 1] * w + px[p],
      j = y * w + x;
    if (!valid[j]) continue;
    let sum = 0;
    for (let k = 0; k < a.length; k++) sum += Math.abs(a[k][i] - b[k][j]);
    d.push(sum / a.length);
  }
  if (!d.length) return Infinity;
  d.sort((u, v) => u - v);
  return d[d.length >> 1];
}

function grey(bands: Float32Array[], n: number): Float32Array {
  const out = new Float32Array(n);
  for (const b of bands) for (let i = 0; i < n; i++) out[i] += b[i] / bands.length;
  return out;
}

/** The (x, y) of every set pixel of a mask that is valid too: the pixels a measure runs over. */
function pixelsOf(mask: Uint8Array, valid: Uint8Array, w: number): Int32Array {
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] && valid[i]) n++;
  const out = new Int32Array(2 * n);
  for (let i = 0, k = 0; i < mask.length; i++)
    if (mask[i] && valid[i]) {
      out[k++] = i % w;
      out[k++] = (i / w) | 0;
    }
  return out;
}

/** Every `stride`-th pixel of a list of (x, y) pairs. */
function everyNth(px: Int32Array, stride: number): Int32Array {
  const n = Math.ceil(px.length / 2 / stride);
  const out = new Int32Array(2 * n);
  for (let p = 0, k = 0; p < px.length; p += 2 * stride) {
    out[k++] = px[p];
    out[k++] = px[p + 1];
  }
  return out;
}

/** Mean |a(p) − b(p + shift)| over `px` (pairs of x, y) valid at the shifted place too, bands averaged; Infinity without any. */
function meanAbsDiff(
  a: Float32Array[],
  b: Float32Array[],
  px: Int32Array,
  valid: Uint8Array,
  w: number,
  h: number,
  dx: number,
  dy: number,
): number {
  let sum = 0,
    n = 0;
  for (let p = 0; p < px.length; p += 2) {
    const x = px[p] + dx,
      y = px[p + 1] + dy;
    if (x < 0 || y < 0 || x >= w || y >= h) continue;
    const i = px[p + 1] * w + px[p],
      j = y * w + x;
    if (!valid[j]) continue;
    for (let k = 0; k < a.length; k++) sum += Math.abs(a[k][i] - b[k][j]);
    n++;
  }
  return n ? sum / (n * a.length) : Infinity;
}

/** Pearson correlation of a(p) and b(p + shift) over `px` (pairs of x, y) valid at the shifted place too; -1 without enough. */
function correlation(
  a: Float32Array,
  b: Float32Array,
  px: Int32Array,
  valid: Uint8Array,
  w: number,
  h: number,
  dx: number,
  dy: number,
): number {
  let n = 0,
    sa = 0,
    sb = 0,
    qa = 0,
    qb = 0,
    ab = 0;
  for (let p = 0; p < px.length; p += 2) {
    const x = px[p] + dx,
      y = px[p + 1] + dy;
    if (x < 0 || y < 0 || x >= w || y >= h) continue;
    const j = y * w + x;
    if (!valid[j]) continue;
    const va = a[px[p + 1] * w + px[p]],
      vb = b[j];
    n++;
    sa += va;
    sb += vb;
    qa += va * va;
    qb += vb * vb;
    ab += va * vb;
  }
  if (n < 8) return -1;
  const cov = ab / n - (sa / n) * (sb / n);
  const den = Math.sqrt(Math.max(qa / n - (sa / n) ** 2, 0) * Math.max(qb / n - (sb / n) ** 2, 0));
  return den > 1e-9 ? cov / den : 0;
}
