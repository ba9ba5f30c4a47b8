/**
 * The fair reference for a batch's wall time: the model alone on the same window pixels. With
 * parts in flight together the model shares the cores with the other parts' work, so some of that
 * work shows up as slower inference; timing the model on its own (full-size windows on one pair of
 * the batch's own images, median of 5 after a warm-up, at each window size the batch ran) and summing over its windows
 * says how much of the wall time is anything but the model.
 */
import type { Knex } from 'knex';
import { grownRegion, partMarginPx } from '../pipeline/detect.tile.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { modelInputSize, windowGrid } from '../pipeline/window.grid.ts';

export interface ModelAlone {
  seconds: number;
  windowMpx: number;
  msPerMpx: number;
  /** The window sizes timed, with how many windows of each the batch ran: "4 × 576×576". */
  sizes: string;
}

/** The model alone on batch `batchId`'s windows, timed on `pair` (GeoTIFFs at least as large as the windows). */
export async function modelAlone(
  db: Knex,
  modelDir: string,
  threads: number | undefined,
  batchId: number,
  pair: { before: string; after: string },
): Promise<ModelAlone> {
  const model = await OnnxChangeModel.load(modelDir, { intraOpThreads: threads });
  try {
    const m = model.manifest;
    const read = async (file: string, w: number, h: number) => {
      const src = await GeoTiffSource.open(file);
      try {
        const px = await src.readInterleaved({ x: 0, y: 0, width: w, height: h });
        if (!px || m.inputType !== 'uint8' || px.samples !== 3)
          throw new Error(`the reference needs an 8-bit RGB model and image (model ${m.name}: ${m.inputType})`);
        return px.data as Uint8Array;
      } finally {
        await src.close();
      }
    };
    const rows = await db('batch_part as p')
      .join('imagery as i', 'i.id', 'p.imagery_id')
      .where('p.batch_id', batchId)
      .select('p.x', 'p.y', 'p.width', 'p.height', 'p.windows', 'i.width_px', 'i.height_px');
    // the windows detectRegion ran for each part (it skips those without data), counted by size:
    // each size is timed on its own (small windows cost more per pixel than full-size ones)
    const sizes = new Map<string, { w: number; h: number; n: number }>();
    for (const r of rows) {
      const grown = grownRegion(r, r.width_px, r.height_px, partMarginPx(m));
      const g = windowGrid(grown.width, grown.height, m);
      const [w, h] = [modelInputSize(g.xs.size, m), modelInputSize(g.ys.size, m)]; // as the model is fed them
      const key = `${w}x${h}`;
      const e = sizes.get(key) ?? { w, h, n: 0 };
      e.n += r.windows ?? g.windows.length;
      sizes.set(key, e);
    }
    let seconds = 0,
      windowPx = 0;
    for (const [key, { n }] of sizes) if (n === 0) sizes.delete(key);
    for (const { w, h, n } of sizes.values()) {
      const [before, after] = [await read(pair.before, w, h), await read(pair.after, w, h)];
      const runs: number[] = [];
      for (let k = 0; k < 6; k++) runs.push((await model.run(before, after, 1, h, w)).computeMs ?? NaN);
      seconds += (n * runs.slice(1).sort((a, b) => a - b)[2]) / 1000;
      windowPx += n * w * h;
    }
    return {
      seconds,
      windowMpx: windowPx / 1e6,
      msPerMpx: (seconds * 1000) / (windowPx / 1e6),
      sizes: [...sizes.values()].map((z) => `${z.n} × ${z.w}×${z.h}`).join(', '),
    };
  } finally {
    await model.close();
  }
}
