import { describe, expect, it } from 'vitest';
import { objectCounts, pixelCounts, summarise } from '../pipeline/metrics.ts';

function mask(rows: string[]): Uint8Array {
  return Uint8Array.from(rows.join('').split(''), (c) => (c === '#' ? 1 : 0));
}

describe('change-detection metrics', () => {
  const truth = mask(['##....', '##....', '......', '....##', '....##', '......']);
  const pred = mask(['###...', '##....', '......', '......', '......', '.....#']);

  it('counts pixels: TP, FP, FN, TN', () => {
    expect(pixelCounts(pred, truth)).toEqual({ tp: 4, fp: 2, fn: 4, tn: 26 });
    const s = summarise(pixelCounts(pred, truth), objectCounts(pred, truth, 6, 6));
    expect(s.pixel.precision).toBeCloseTo(4 / 6);
    expect(s.pixel.recall).toBeCloseTo(4 / 8);
    expect(s.pixel.f1).toBeCloseTo((2 * (4 / 6) * 0.5) / (4 / 6 + 0.5));
    expect(s.pixel.iou).toBeCloseTo(4 / 10);
  });

  it('matches objects at IoU ≥ 0.5 and reports recall for large objects separately', () => {
    // truth: two 2×2 squares; pred: a 5-pixel blob over the first (IoU 4/5) and a stray pixel.
    const o = objectCounts(pred, truth, 6, 6, { pixelAreaM2: 0.25, largeAreaM2: 1 });
    expect(o).toEqual({ truth: 2, found: 1, truthLarge: 2, foundLarge: 1, predicted: 2, matched: 1 });
    const s = summarise(pixelCounts(pred, truth), o);
    expect(s.object).toMatchObject({ precision: 0.5, recall: 0.5, f1: 0.5, recallLarge: 0.5 });
    expect(objectCounts(pred, truth, 6, 6, { pixelAreaM2: 0.25, largeAreaM2: 2 })).toMatchObject({
      truthLarge: 0,
      foundLarge: 0,
    });
  });

  it('does not count an overlap below IoU 0.5 as found', () => {
    const big = mask(['######', '######', '######', '......', '......', '......']);
    const small = mask(['##....', '......', '......', '......', '......', '......']);
    expect(objectCounts(small, big, 6, 6)).toMatchObject({ found: 0, matched: 0 });
  });

  it('leaves precision undefined (null) when nothing is predicted, not zero or one', () => {
    const none = new Uint8Array(36);
    const s = summarise(pixelCounts(none, truth), objectCounts(none, truth, 6, 6));
    expect(s.pixel.precision).toBeNull();
    expect(s.pixel.recall).toBe(0);
    expect(s.object.precision).toBeNull();
  });
});
