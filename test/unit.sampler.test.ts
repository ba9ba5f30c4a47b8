import { describe, expect, it } from 'vitest';
import { hasTorch, pythonScript } from './helpers/torch.ts';

/** The detector's training batches (models/siam-unet-lite/sampler.py), checked in the training's Python. */
describe('training sampler', () => {
  // The dates of a real pair are cut up to 3 px apart (misregistration, as months have it); the label must
  // follow the after image, where the new roof stands, or the network learns outlines a few pixels off.
  it.skipIf(!hasTorch)(
    "keeps the label on the after image's roof under misregistration, real pairs and in-context change (needs python3-torch)",
    () => {
      const out = JSON.parse(pythonScript('test/python/sampler_label.py').toString());
      expect(out.labelOffRoof).toEqual([]);
      expect(out.samples).toBe(200);
      expect(out.withRoof).toBeGreaterThan(100); // most crops hold part of the roof, so the check has something to see
      // in-context change (--isolated): the roof built or half built on one date, labelled on the after crop's roof
      expect(out.isolated.labelOffRoof).toEqual([]);
      expect(out.isolated.labelled).toBeGreaterThan(50);
    },
    120_000,
  );
});
