import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { TransientError } from '../core/errors.ts';
import { say } from '../i18n/say.ts';
import type { ChipPlan } from './sheets.ts';

export interface ChipRequest {
  id: number;
  plan: ChipPlan;
}
export interface ChipReply {
  id: number;
  png?: Uint8Array;
  error?: string;
}

/**
 * Chips drawn in worker threads (issue 29): reading and decoding the imagery windows (geotiff.js
 * decompresses in JavaScript) and drawing the outline happen off the server's event loop, so the API
 * answers while a page of chips is drawn. The threads start on the first chip and stay; a thread
 * that dies is replaced, and the chips it held fail with the reason.
 */
export class ChipPool {
  private workers: { worker: Worker; busy: number }[] = [];
  private waiting = new Map<number, { resolve: (b: Buffer) => void; reject: (e: Error) => void; w: Worker }>();
  private next = 1;

  constructor(private readonly size = Math.max(1, Math.min(2, availableParallelism()))) {}

  render(plan: ChipPlan): Promise<Buffer> {
    const slot = this.pick();
    const id = this.next++;
    return new Promise<Buffer>((resolve, reject) => {
      this.waiting.set(id, { resolve, reject, w: slot.worker });
      slot.busy++;
      slot.worker.postMessage({ id, plan } satisfies ChipRequest);
    }).finally(() => {
      slot.busy--;
    });
  }

  /** The least busy thread, started when fewer than `size` run. */
  private pick(): { worker: Worker; busy: number } {
    const idle = this.workers.find((w) => w.busy === 0);
    if (idle) return idle;
    if (this.workers.length < this.size) return this.start();
    return this.workers.reduce((a, b) => (b.busy < a.busy ? b : a));
  }

  private start(): { worker: Worker; busy: number } {
    // workerData given (empty): geotiff's web-worker shim reads it when loaded inside a thread
    const worker = new Worker(new URL('./chip.thread.mjs', import.meta.url), { workerData: {} });
    worker.unref();
    const slot = { worker, busy: 0 };
    worker.on('message', (m: ChipReply) => {
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      if (m.png) w.resolve(Buffer.from(m.png.buffer, m.png.byteOffset, m.png.byteLength));
      else w.reject(new Error(m.error ?? 'the chip thread gave no chip'));
    });
    const gone = (err: Error) => {
      this.workers = this.workers.filter((x) => x !== slot);
      for (const [id, w] of this.waiting)
        if (w.w === worker) {
          this.waiting.delete(id);
          w.reject(err);
        }
    };
    worker.on('error', gone);
    worker.on('exit', (code) => gone(new Error(`the chip thread stopped (exit ${code})`)));
    this.workers.push(slot);
    return slot;
  }

  /** Stops the threads; chips still being drawn are refused as the server stopping (503), not as its fault. */
  async close(): Promise<void> {
    const all = this.workers;
    this.workers = [];
    for (const [id, w] of this.waiting) {
      this.waiting.delete(id);
      w.reject(new TransientError(say('server_stopping')));
    }
    await Promise.all(all.map((w) => w.worker.terminate()));
  }
}
