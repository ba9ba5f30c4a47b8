import { parentPort } from 'node:worker_threads';
import { GeoTiffCache } from '../pipeline/io/geotiff.source.ts';
import { renderChipPlan, type ChipPlan } from './sheets.ts';
import type { ChipReply, ChipRequest } from './chip.pool.ts';

// One of the chip pool's threads: reads the imagery windows a plan names (its own open files) and
// draws the chip, off the server's event loop.
const sources = new GeoTiffCache();
parentPort!.on('message', (m: ChipRequest) => {
  void (async () => {
    let reply: ChipReply;
    try {
      const png = await renderChipPlan(m.plan as ChipPlan, (path) => sources.open(path));
      reply = { id: m.id, png: new Uint8Array(png.buffer, png.byteOffset, png.byteLength) };
      parentPort!.postMessage(reply, [reply.png!.buffer as ArrayBuffer]);
    } catch (err) {
      reply = { id: m.id, error: (err as Error).message };
      parentPort!.postMessage(reply);
    }
  })();
});
