import { rmSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { BadInputError, TubanError, type ErrorKind } from '../core/errors.ts';
import type { SheetPlan } from './sheets.ts';

/** What the PDF thread is given: every sheet's record and chip plans, plain data. */
export interface PdfJob {
  plans: SheetPlan[];
  title: string;
  font: string;
  outPath: string;
}

export type PdfThreadReply =
  | { ok: true }
  | { ok: false; message: string; code?: string; kind?: ErrorKind; detail?: Record<string, unknown> };

/**
 * Writes verification sheets in a worker thread (export/pdf.worker.ts): chip cutting, image
 * decoding, compression and layout stay off the caller's event loop. An abort terminates the
 * thread at once and removes the half-written file.
 */
export function runPdfThread(job: PdfJob, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  return new Promise<void>((resolve, reject) => {
    const worker = new Worker(new URL('./pdf.thread.mjs', import.meta.url), { workerData: job });
    let settled = false;
    const settle = (err?: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => {
      void worker.terminate().then(() => rmSync(job.outPath, { force: true }));
      settle(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.once('message', (m: PdfThreadReply) => {
      if (m.ok) return settle();
      if (m.code) return settle(new BadInputError(m.code, m.message, m.detail));
      if (m.kind) return settle(new TubanError(m.kind, m.message, m.detail));
      settle(new Error(`writing ${job.outPath}: ${m.message}`));
    });
    worker.once('error', (err) => settle(err));
    worker.once('exit', (code) =>
      settle(new Error(`the PDF thread for ${job.outPath} stopped (exit ${code}) before it finished`)),
    );
  });
}
