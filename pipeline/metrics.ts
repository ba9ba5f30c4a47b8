import { labelRuns } from './mask.runs.ts';

/** Pixel-level confusion counts of a predicted change mask against a labelled one. */
export interface PixelCounts {
  tp: number;
  fp: number;
  fn: number;
  tn: number;
}

export interface ObjectCounts {
  /** Labelled change regions (8-connected) and how many a prediction found with IoU ≥ the threshold. */
  truth: number;
  found: number;
  /** The same for labelled regions of at least `largeAreaM2`. */
  truthLarge: number;
  foundLarge: number;
  /** Predicted regions and how many match a labelled one with IoU ≥ the threshold. */
  predicted: number;
  matched: number;
}

export function pixelCounts(pred: Uint8Array, truth: Uint8Array): PixelCounts {
  if (pred.length !== truth.length) throw new Error(`prediction has ${pred.length} pixels, label ${truth.length}`);
  const c = { tp: 0, fp: 0, fn: 0, tn: 0 };
  for (let i = 0; i < pred.length; i++) {
    const p = pred[i] !== 0,
      t = truth[i] !== 0;
    if (p && t) c.tp++;
    else if (p) c.fp++;
    else if (t) c.fn++;
    else c.tn++;
  }
  return c;
}

/** Per-pixel component ids (1-based, 0 = background) of an 8-connected labelling, and component sizes. */
function components(mask: Uint8Array, width: number, height: number): { ids: Int32Array; sizes: number[] } {
  const runs = labelRuns(mask, width, height);
  const idOf = new Map<number, number>();
  const ids = new Int32Array(width * height);
  const sizes: number[] = [0];
  for (let i = 0; i < runs.count; i++) {
    let id = idOf.get(runs.root8[i]);
    if (id === undefined) {
      id = sizes.length;
      idOf.set(runs.root8[i], id);
      sizes.push(0);
    }
    ids.fill(id, runs.row[i] * width + runs.startX[i], runs.row[i] * width + runs.endX[i]);
    sizes[id] += runs.endX[i] - runs.startX[i];
  }
  return { ids, sizes };
}

/**
 * Object-level matching: a labelled region counts as found when some predicted region overlaps it
 * with IoU ≥ `iou` (0.5 by default); a predicted region is matched under the same rule.
 */
export function objectCounts(
  pred: Uint8Array,
  truth: Uint8Array,
  width: number,
  height: number,
  opts: { iou?: number; pixelAreaM2?: number; largeAreaM2?: number } = {},
): ObjectCounts {
  const iouMin = opts.iou ?? 0.5;
  const largePx = (opts.largeAreaM2 ?? 50) / (opts.pixelAreaM2 ?? 0.25);
  const P = components(pred, width, height);
  const T = components(truth, width, height);
  const inter = new Map<number, number>(); // key t * (P count) + p
  const np = P.sizes.length;
  for (let i = 0; i < pred.length; i++) {
    const t = T.ids[i],
      p = P.ids[i];
    if (t && p) inter.set(t * np + p, (inter.get(t * np + p) ?? 0) + 1);
  }
  const foundT = new Set<number>();
  const matchedP = new Set<number>();
  for (const [key, n] of inter) {
    const t = Math.floor(key / np),
      p = key % np;
    if (n / (T.sizes[t] + P.sizes[p] - n) >= iouMin) {
      foundT.add(t);
      matchedP.add(p);
    }
  }
  let truthLarge = 0,
    foundLarge = 0;
  for (let t = 1; t < T.sizes.length; t++) {
    if (T.sizes[t] >= largePx) {
      truthLarge++;
      if (foundT.has(t)) foundLarge++;
    }
  }
  return {
    truth: T.sizes.length - 1,
    found: foundT.size,
    truthLarge,
    foundLarge,
    predicted: np - 1,
    matched: matchedP.size,
  };
}

const ratio = (a: number, b: number) => (b === 0 ? null : a / b);
const f1 = (p: number | null, r: number | null) =>
  p === null || r === null || p + r === 0 ? null : (2 * p * r) / (p + r);

export function summarise(px: PixelCounts, obj: ObjectCounts) {
  const precision = ratio(px.tp, px.tp + px.fp);
  const recall = ratio(px.tp, px.tp + px.fn);
  const objPrecision = ratio(obj.matched, obj.predicted);
  const objRecall = ratio(obj.found, obj.truth);
  return {
    pixel: { precision, recall, f1: f1(precision, recall), iou: ratio(px.tp, px.tp + px.fp + px.fn), ...px },
    object: {
      precision: objPrecision,
      recall: objRecall,
      f1: f1(objPrecision, objRecall),
      recallLarge: ratio(obj.foundLarge, obj.truthLarge),
      ...obj,
    },
  };
}

export function addPixel(a: PixelCounts, b: PixelCounts): PixelCounts {
  return { tp: a.tp + b.tp, fp: a.fp + b.fp, fn: a.fn + b.fn, tn: a.tn + b.tn };
}

export function addObject(a: ObjectCounts, b: ObjectCounts): ObjectCounts {
  return {
    truth: a.truth + b.truth,
    found: a.found + b.found,
    truthLarge: a.truthLarge + b.truthLarge,
    foundLarge: a.foundLarge + b.foundLarge,
    predicted: a.predicted + b.predicted,
    matched: a.matched + b.matched,
  };
}
