/**
 * The pure half of scripts/bench-followup.ts: each labelled new building of a LEVIR-CD pair becomes
 * one case of a bureau's month — plain new construction, one under a valid permit, an extension of a
 * registered building, a rebuild on a registered footprint, or a registered building that did not
 * change — with the registered-building and permit layers and, where the case needs it, the earlier
 * month's pixels changed to match (a registered building's older part or older roof pasted in). Works
 * on the warped rasters as arrays; no file is read here.
 */
import { mulberry32 } from './prng.ts';

/**
 * The cases, and the relation a patch on each should have:
 * - `new`: nothing registered (the building as LEVIR has it);
 * - `permit`: a valid permit over it, grown by 2 m: must not become a patch;
 * - `extension_layer` / `on_building_layer`: the western half / all of it registered, the imagery as
 *   LEVIR has it (the whole building new in the imagery, the register says otherwise: a register drawn
 *   from plans, or the tester's case in issue 28);
 * - `extension_image`: the western half registered and standing in both months (B's pixels pasted into
 *   A), the eastern half added;
 * - `on_building_image`: all of it registered, with another roof in A (the roof of the nearest-sized
 *   other building of the image, scaled to it): rebuilt on the spot;
 * - `unchanged`: all of it registered, its own roof in A too (matched to A's light and shifted by a
 *   pixel, as two dates of one roof differ): no change, must not become a patch.
 * Buildings under MIN_CASE_PX are `small` (new construction too small to split; scored apart).
 */
export const CASES = [
  'new',
  'permit',
  'extension_layer',
  'on_building_layer',
  'extension_image',
  'on_building_image',
  'unchanged',
] as const;
export type CaseKind = (typeof CASES)[number] | 'small';

/** The relation a patch on a building of each case should carry; null where no patch should be. */
export const EXPECTED_RELATION: Record<CaseKind, 'new' | 'extension' | 'on_building' | null> = {
  new: 'new',
  small: 'new',
  permit: null,
  extension_layer: 'extension',
  on_building_layer: 'on_building',
  extension_image: 'extension',
  on_building_image: 'on_building',
  unchanged: null,
};

/** 50 m² at 0.5 m: a half of it is still above the smallest patch (20 m²). */
export const MIN_CASE_PX = 200;
/** Permits are drawn 2 m (4 px) beyond the building, as a parcel is. */
const PERMIT_GROW_PX = 4;

export interface Component {
  id: number;
  px: number;
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** 8-connected regions of a 0/1 mask: a label per pixel (0 outside, 1.. inside) and each region's size and box. */
export function labelComponents(mask: Uint8Array, w: number, h: number): { labels: Int32Array; comps: Component[] } {
  const labels = new Int32Array(w * h);
  const comps: Component[] = [];
  const stack: number[] = [];
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    const c: Component = { id: comps.length + 1, px: 0, x0: w, y0: h, x1: 0, y1: 0 };
    labels[start] = c.id;
    stack.push(start);
    while (stack.length) {
      const i = stack.pop()!;
      const x = i % w,
        y = (i - x) / w;
      c.px++;
      c.x0 = Math.min(c.x0, x);
      c.y0 = Math.min(c.y0, y);
      c.x1 = Math.max(c.x1, x + 1);
      c.y1 = Math.max(c.y1, y + 1);
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx,
            ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
          const j = ny * w + nx;
          if (mask[j] && !labels[j]) {
            labels[j] = c.id;
            stack.push(j);
          }
        }
    }
    comps.push(c);
  }
  return { labels, comps };
}

/** Each region's case: the small ones `small`, the others dealt the cases in turn after a seeded shuffle, so each case gets a fair share of each image. */
export function dealCases(comps: Component[], seed: number): Map<number, CaseKind> {
  const rand = mulberry32(seed);
  const big = comps.filter((c) => c.px >= MIN_CASE_PX);
  for (let i = big.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [big[i], big[j]] = [big[j], big[i]];
  }
  const out = new Map<number, CaseKind>(comps.map((c) => [c.id, 'small']));
  big.forEach((c, i) => out.set(c.id, CASES[i % CASES.length]));
  return out;
}

/** A name's seed (FNV-1a), so each image deals its cases the same way every run. */
export function seedOf(name: string): number {
  let h = 0x811c9dc5;
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}

/** Per band, the gain and offset that give B's samples A's mean and spread (over pixels with data in both). */
export function lightMatch(a: Uint8Array, b: Uint8Array, bands: number): { gain: number[]; offset: number[] } {
  const gain: number[] = [],
    offset: number[] = [];
  for (let k = 0; k < bands; k++) {
    let n = 0,
      sa = 0,
      sb = 0,
      qa = 0,
      qb = 0;
    for (let i = k; i < a.length; i += bands) {
      const va = a[i],
        vb = b[i];
      if (!va || !vb) continue;
      n++;
      sa += va;
      sb += vb;
      qa += va * va;
      qb += vb * vb;
    }
    const ma = sa / n,
      mb = sb / n;
    const g = Math.sqrt(Math.max(qa / n - ma * ma, 1) / Math.max(qb / n - mb * mb, 1));
    gain.push(g);
    offset.push(ma - g * mb);
  }
  return { gain, offset };
}

/** Masks of one image's cases, each 0/1 on the scene grid. */
export interface CaseMasks {
  /** Registered building footprints (the building layer). */
  registered: Uint8Array;
  /** Valid permits (the permit layer). */
  permit: Uint8Array;
  /** What changed, per case: the building, or its added eastern half. */
  truth: Map<CaseKind, Uint8Array>;
  /** The cases dealt, by region. */
  cases: Map<number, CaseKind>;
}

/**
 * Deals one image's labelled buildings into cases and edits `before` (pixel-interleaved 8-bit,
 * `bands` samples a pixel, 0 = no data) in place where a case needs the earlier month changed.
 */
export function planCases(
  label: Uint8Array,
  before: Uint8Array,
  after: Uint8Array,
  w: number,
  h: number,
  bands: number,
  seed: number,
): CaseMasks {
  const mask = Uint8Array.from(label, (v) => (v > 127 ? 1 : 0));
  const { labels, comps } = labelComponents(mask, w, h);
  const cases = dealCases(comps, seed);
  const light = lightMatch(before, after, bands);
  const registered = new Uint8Array(w * h),
    permit = new Uint8Array(w * h);
  const truth = new Map<CaseKind, Uint8Array>();
  const truthOf = (k: CaseKind) => truth.get(k) ?? truth.set(k, new Uint8Array(w * h)).get(k)!;
  /** B's pixel (sx, sy), in A's light, into A at (x, y). */
  const paste = (x: number, y: number, sx: number, sy: number) => {
    const d = (y * w + x) * bands,
      s = (sy * w + sx) * bands;
    if (!before[d] || !after[s]) return; // no data in either month: nothing to paste
    for (let k = 0; k < bands; k++) {
      const v = Math.round(after[s + k] * light.gain[k] + light.offset[k]);
      before[d + k] = Math.min(255, Math.max(1, v));
    }
  };
  const big = comps.filter((c) => c.px >= MIN_CASE_PX);
  for (const c of comps) {
    const kind = cases.get(c.id)!;
    const midX = (c.x0 + c.x1) / 2;
    const donor =
      kind === 'on_building_image'
        ? big.filter((o) => o.id !== c.id).sort((p, q) => Math.abs(p.px - c.px) - Math.abs(q.px - c.px))[0]
        : undefined;
    for (let y = c.y0; y < c.y1; y++)
      for (let x = c.x0; x < c.x1; x++) {
        const i = y * w + x;
        if (labels[i] !== c.id) continue;
        const west = x + 0.5 < midX;
        switch (kind) {
          case 'new':
          case 'small':
            truthOf(kind)[i] = 1;
            break;
          case 'permit':
            truthOf(kind)[i] = 1;
            break;
          case 'extension_layer':
            truthOf(kind)[i] = 1;
            if (west) registered[i] = 1;
            break;
          case 'on_building_layer':
            truthOf(kind)[i] = 1;
            registered[i] = 1;
            break;
          case 'extension_image':
            if (west) {
              registered[i] = 1;
              paste(x, y, x, y);
            } else truthOf(kind)[i] = 1;
            break;
          case 'on_building_image': {
            truthOf(kind)[i] = 1;
            registered[i] = 1;
            if (donor) {
              const sx = donor.x0 + Math.floor(((x - c.x0) * (donor.x1 - donor.x0)) / (c.x1 - c.x0));
              const sy = donor.y0 + Math.floor(((y - c.y0) * (donor.y1 - donor.y0)) / (c.y1 - c.y0));
              paste(x, y, sx, sy);
            }
            break;
          }
          case 'unchanged':
            truthOf(kind)[i] = 1;
            registered[i] = 1;
            paste(x, y, Math.min(w - 1, x + 1), Math.min(h - 1, y + 1));
            break;
        }
      }
    if (kind === 'permit')
      for (let y = Math.max(0, c.y0 - PERMIT_GROW_PX); y < Math.min(h, c.y1 + PERMIT_GROW_PX); y++)
        for (let x = Math.max(0, c.x0 - PERMIT_GROW_PX); x < Math.min(w, c.x1 + PERMIT_GROW_PX); x++)
          permit[y * w + x] = 1;
  }
  return { registered, permit, truth, cases };
}

/**
 * The next month after a batch's patches were all ordered demolished: `after` (the batch's month)
 * with the earlier month's pixels back inside each demolished footprint (`demolished`, 0/1, grown by
 * the caller), then as another day's delivery would differ: shifted a pixel east (misregistration),
 * resampled (a 3 × 3 binomial blur), other light (gamma 0.9, gain 0.96, offset +5) and sensor noise.
 * Returns a new array (pixel-interleaved, `bands` samples a pixel, 0 = no data), w × h.
 */
export function nextMonth(
  before: Uint8Array,
  after: Uint8Array,
  demolished: Uint8Array,
  w: number,
  h: number,
  bands: number,
  seed: number,
): Uint8Array {
  const rand = mulberry32(seed);
  const base = new Uint8Array(after.length);
  for (let i = 0; i < w * h; i++) {
    const src = demolished[i] && before[i * bands] ? before : after;
    for (let k = 0; k < bands; k++) base[i * bands + k] = src[i * bands + k];
  }
  const out = new Uint8Array(after.length);
  const kernel = [1, 2, 1];
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      if (!after[i * bands]) continue; // no data stays no data
      for (let k = 0; k < bands; k++) {
        let sum = 0,
          weight = 0;
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            const sx = Math.min(w - 1, Math.max(0, x + 1 + dx)),
              sy = Math.min(h - 1, Math.max(0, y + dy));
            const v = base[(sy * w + sx) * bands + k];
            if (!v) continue;
            const wt = kernel[dx + 1] * kernel[dy + 1];
            sum += v * wt;
            weight += wt;
          }
        if (!weight) continue;
        const v = 255 * (sum / weight / 255) ** 0.9;
        // the sum of three uniforms: σ ≈ 2 digital numbers
        const noise = (rand() + rand() + rand() - 1.5) * 4;
        out[i * bands + k] = Math.min(255, Math.max(1, Math.round(v * 0.96 + 5 + noise)));
      }
    }
  return out;
}
