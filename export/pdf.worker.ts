import { parentPort, workerData } from 'node:worker_threads';
import { GeoTiffCache } from '../pipeline/io/geotiff.source.ts';
import { BadInputError, TubanError } from '../core/errors.ts';
import type { PdfJob, PdfThreadReply } from './pdf.run.ts';
import { sheetImages } from './sheets.ts';
import { writePdf } from './write.pdf.ts';

const job = workerData as PdfJob;
const sources = new GeoTiffCache();
let reply: PdfThreadReply;
try {
  await writePdf(
    sheetImages(job.plans, (path) => sources.open(path)),
    job.title,
    job.font,
    job.outPath,
  );
  reply = { ok: true };
} catch (err) {
  const e = err as Error;
  reply = {
    ok: false,
    message: e.message,
    code: err instanceof BadInputError ? err.code : undefined,
    kind: err instanceof TubanError ? err.kind : undefined,
    detail: err instanceof TubanError ? err.detail : undefined,
  };
} finally {
  await sources.close();
}
parentPort!.postMessage(reply);
