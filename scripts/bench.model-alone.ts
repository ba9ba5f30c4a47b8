/**
 * The fair reference for a batch's wall time: the model alone on the same window pixels. With
 * parts in flight together the model shares the cores with the other parts' work, so some of that
 * work shows up as slower inference; timing the model on its own (full-size windows on one pair of
 * the batch's own images, median of 5 after a warm-up) and scaling it to every window the batch ran
 * says how much of the wall time is anything but the model.
 */
import type { Knex } from 'knex';
import { grownRegion, partMarginPx } from '../pipeline/detect.tile.ts';
import { GeoTiffSource } from '../pipeline/io/geotiff.source.ts';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { windowGrid } from '../pipeline/window.grid.ts';

export interface ModelAlone {
  seconds: number;
  windowMpx: number;
  msPerMpx: number;
  windowPx: number;
}

/** The model alone on batch `batchId`'s windows, timed on `pair` (GeoTIFFs at least a window wide, or as wide as they are). */
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
    const read = async (file: string, win: number) => {
      const src = await GeoTiffSource.open(file);
      try {
        const px = await src.readInterleaved({ x: 0, y: 0, width: win, height: win });
        if (!px || m.inputType !== 'uint8' || px.samples !== 3)
          throw new Error(`the reference needs an 8-bit RGB model and image (model ${m.name}: ${m.inputType})`);
        return px.data as Uint8Array;
      } finally {
        await src.close();
      }
    };
    const probe = await GeoTiffSource.open(pair.after);
    const win = Math.min(m.maxWindowPx ?? m.tileSizePx, probe.info.widthPx, probe.info.heightPx);
    await probe.close();
    const [before, after] = [await read(pair.before, win), await read(pair.after, win)];
    const runs: number[] = [];
    for (let k = 0; k < 6; k++) runs.push((await model.run(before, after, 1, win, win)).computeMs ?? NaN);
    const msPerPx = runs.slice(1).sort((a, b) => a - b)[2] / (win * win);
    const rows = await db('batch_part as p')
      .join('imagery as i', 'i.id', 'p.imagery_id')
      .where('p.batch_id', batchId)
      .select('p.x', 'p.y', 'p.width', 'p.height', 'i.width_px', 'i.height_px');
    let windowPx = 0;
    for (const r of rows) {
      // the windows detectRegion ran for this part
      const grown = grownRegion(r, r.width_px, r.height_px, partMarginPx(m));
      const g = windowGrid(grown.width, grown.height, m);
      windowPx += g.windows.length * g.xs.size * g.ys.size;
    }
    return { seconds: (windowPx * msPerPx) / 1000, windowMpx: windowPx / 1e6, msPerMpx: msPerPx * 1e6, windowPx: win };
  } finally {
    await model.close();
  }
}
