import { describe, expect, it } from 'vitest';
import { hasTorch, pythonScript } from './helpers/torch.ts';

/** train.py's pixel figures (its training and development metrics), checked in the training's Python. */
describe('training evaluation', () => {
  // A folder from `tuban training export` knows its label only where a verdict judged the ground (known/); the loss
  // ignores the rest, and so must the figures, or a run on verdicts reports false alarms on unjudged land.
  it.skipIf(!hasTorch)(
    'counts only the pixels whose label is known (needs python3-torch)',
    () => {
      const out = JSON.parse(pythonScript('test/python/evaluate_known.py').toString());
      // 3 found, 2 false and 0 missed on judged ground; the plain folder counts all 8 × 8 px: 3, 4 and 1
      expect(out.withKnown).toMatchObject({ precision: 0.6, recall: 1, iou: 0.6 });
      expect(out.plain).toMatchObject({ precision: 0.4286, recall: 0.75, iou: 0.375 });
    },
    120_000,
  );
});
