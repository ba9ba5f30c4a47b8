/**
 * Standing roofs a year apart, for 回头看's false "gone": the unlabeled real pairs of the shared data
 * (change-pairs/unlabeled-pairs: one village and its factories, 2019-12-14 and 2020-11-24, 16 tiles of
 * 256² that make one 1024² scene) with rectangles drawn by hand inside 23 roofs that stand in both
 * dates (mosaic pixels, [x0, y0, x1, y1]). The two dates differ as real deliveries do: season, sun,
 * haze, and a misregistration of up to 10 px on the scene's western half. Nothing here is a label of
 * the data set; the rectangles are ours.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { EVIDENCE_MARGIN_PX, footprintEvidence, type FootprintEvidence } from '../pipeline/lookback.judge.ts';

const STEM = '2019-12-14-2020-11-24';
const TILE_PX = 256;
const SCENE_PX = 1024;

export const STANDING_ROOFS: [number, number, number, number][] = [
  [72, 292, 128, 508],
  [365, 5, 435, 55],
  [310, 200, 345, 235],
  [250, 462, 345, 510],
  [405, 405, 435, 445],
  [462, 335, 495, 375],
  [228, 690, 352, 750],
  [222, 770, 380, 830],
  [235, 850, 405, 897],
  [262, 517, 350, 667],
  [458, 807, 510, 910],
  [64, 644, 108, 700],
  [68, 847, 112, 927],
  [242, 964, 438, 1017],
  [32, 614, 108, 640],
  [97, 520, 125, 570],
  [650, 68, 680, 115],
  [650, 132, 682, 158],
  [642, 170, 670, 212],
  [662, 258, 710, 290],
  [657, 318, 700, 345],
  [615, 398, 639, 418],
  [609, 425, 639, 448],
];

/** One date's 16 tiles as one scene: reflectance 0..1, band-separate. */
async function mosaic(dir: string): Promise<Float32Array[]> {
  const bands = [0, 1, 2].map(() => new Float32Array(SCENE_PX * SCENE_PX));
  for (let r = 0; r < 4; r++)
    for (let c = 0; c < 4; c++) {
      const { data, info } = await sharp(join(dir, `${STEM}_${r}_${c}.png`))
        .removeAlpha()
        .raw()
        .toBuffer({ resolveWithObject: true });
      if (info.width !== TILE_PX || info.height !== TILE_PX || info.channels !== 3)
        throw new Error(
          `${dir}: ${STEM}_${r}_${c}.png is ${info.width}×${info.height}×${info.channels}, expected 256×256×3`,
        );
      for (let y = 0; y < TILE_PX; y++)
        for (let x = 0; x < TILE_PX; x++) {
          const i = (r * TILE_PX + y) * SCENE_PX + c * TILE_PX + x;
          for (let k = 0; k < 3; k++) bands[k][i] = data[(y * TILE_PX + x) * 3 + k] / 255;
        }
    }
  return bands;
}

/** The evidence on each standing roof (null when the data is not there). */
export async function standingRoofEvidence(dataDir: string): Promise<FootprintEvidence[] | null> {
  const root = join(dataDir, 'change-pairs', 'unlabeled-pairs');
  if (!existsSync(join(root, 'A', `${STEM}_0_0.png`))) return null;
  const [a, b] = await Promise.all([mosaic(join(root, 'A')), mosaic(join(root, 'B'))]);
  return STANDING_ROOFS.map(([x0, y0, x1, y1]) => {
    const wx0 = Math.max(0, x0 - EVIDENCE_MARGIN_PX),
      wy0 = Math.max(0, y0 - EVIDENCE_MARGIN_PX);
    const wx1 = Math.min(SCENE_PX, x1 + EVIDENCE_MARGIN_PX),
      wy1 = Math.min(SCENE_PX, y1 + EVIDENCE_MARGIN_PX);
    const w = wx1 - wx0,
      h = wy1 - wy0;
    const cut = (bands: Float32Array[]) =>
      bands.map((band) => {
        const out = new Float32Array(w * h);
        for (let y = 0; y < h; y++)
          out.set(band.subarray((wy0 + y) * SCENE_PX + wx0, (wy0 + y) * SCENE_PX + wx1), y * w);
        return out;
      });
    const footprint = new Uint8Array(w * h);
    for (let y = y0 - wy0; y < y1 - wy0; y++) footprint.fill(1, y * w + x0 - wx0, y * w + x1 - wx0);
    return footprintEvidence(cut(a), cut(b), new Uint8Array(w * h).fill(1), footprint, w, h);
  });
}
