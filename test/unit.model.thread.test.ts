import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { OnnxChangeModel } from '../pipeline/io/model.onnx.ts';
import { firstDifference, sameBytes } from './helpers/bytes.ts';

const DIR = 'models/siam-unet-lite';

/** The model's files refused when they do not hold up, and its session's thread: order, liveness, restarts. */
describe('siam-unet-lite ONNX model: files and thread', () => {
  it('refuses a model file that does not match the manifest checksum, naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tuban-model-'));
    try {
      copyFileSync(join(DIR, 'manifest.json'), join(dir, 'manifest.json'));
      const bytes = readFileSync(join(DIR, 'model.onnx'));
      bytes[bytes.length - 1] ^= 0xff;
      writeFileSync(join(dir, 'model.onnx'), bytes);
      await expect(OnnxChangeModel.load(dir)).rejects.toThrow(/model\.onnx: sha256 .* differs from the manifest/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs on a thread of its own: the event loop keeps turning during a run, runs in flight answer in order, the caller keeps its inputs', async () => {
    const model = await OnnxChangeModel.load(DIR, { intraOpThreads: 1 });
    try {
      const n = 2,
        h = 512,
        w = 512;
      const input = (seed: number) =>
        Uint8Array.from({ length: n * h * w * 3 }, (_, i) => (i * seed + (i >> 9) * 31) % 251);
      const alone = (await model.run(input(7), input(13), n, h, w)).probability;
      // onnxruntime-node computes on the calling thread: on the main thread, no timer fires during a run
      let ticks = 0;
      const timer = setInterval(() => ticks++, 1);
      const before = input(7),
        after = input(13);
      const [r1, r2] = await Promise.all([model.run(before, after, n, h, w), model.run(input(13), input(7), n, h, w)]);
      clearInterval(timer);
      expect(r1.computeMs! + r2.computeMs!).toBeGreaterThan(20);
      expect(ticks).toBeGreaterThan(5);
      expect(firstDifference(r1.probability, alone)).toBe(-1);
      expect(sameBytes(r2.probability, alone)).toBe(false);
      // the caller keeps its arrays (the model copies them into memory its thread shares)
      expect(sameBytes(before, input(7))).toBe(true);
      expect(after.byteLength).toBe(n * h * w * 3);
      // views into a larger buffer are fine
      const big = new Uint8Array(2 * 64 * 64 * 3 + 10);
      const view = big.subarray(10);
      expect(
        (await model.run(view.subarray(0, 64 * 64 * 3), view.subarray(64 * 64 * 3), 1, 64, 64)).probability.length,
      ).toBe(64 * 64);
    } finally {
      await model.close();
    }
    await expect(model.run(new Uint8Array(3 * 8 * 8), new Uint8Array(3 * 8 * 8), 1, 8, 8)).rejects.toThrow(
      /model\.onnx: the model was closed/,
    );
  });

  it('starts its thread again when it dies: the run in flight fails, naming the file, and the next one runs', async () => {
    const model = await OnnxChangeModel.load(DIR, { intraOpThreads: 1 });
    try {
      const x = () => Uint8Array.from({ length: 3 * 256 * 256 }, (_, i) => (i * 31) % 251);
      const first = (await model.run(x(), x(), 1, 256, 256)).probability.slice();
      const inFlight = model.run(x(), x(), 1, 256, 256);
      // what an uncaught error inside the thread, or an exhausted resource limit, comes to
      await (model as unknown as { session: { worker: Worker } }).session.worker.terminate();
      await expect(inFlight).rejects.toThrow(/model\.onnx: the onnxruntime thread has stopped/);
      expect(firstDifference((await model.run(x(), x(), 1, 256, 256)).probability, first)).toBe(-1);
    } finally {
      await model.close();
    }
  });

  it('refuses a file onnxruntime cannot load, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tuban-model-'));
    try {
      const manifest = JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8'));
      delete manifest.sha256;
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
      writeFileSync(join(dir, 'model.onnx'), 'not a model');
      await expect(OnnxChangeModel.load(dir)).rejects.toThrow(/model\.onnx: onnxruntime cannot load the model/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
