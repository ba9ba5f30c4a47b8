// @ts-check
/**
 * The onnxruntime session of OnnxChangeModel (model.onnx.ts), on a thread of its own.
 *
 * onnxruntime-node runs a session synchronously on the thread that calls it, so on the main thread
 * every inference (a fifth of a second for a 1024² window, seconds for a batch of them) stops
 * everything else: the next part's reads and database round trips, BullMQ's lock renewals, and the
 * HTTP server when workers run inside it. Here it stops only this thread.
 *
 * Plain JavaScript, so the thread starts the same under tsx, vitest and node alone.
 *
 * workerData: { model: Uint8Array (the ONNX bytes), options: ort.InferenceSession.SessionOptions }.
 * First message out: { ready: { inputNames, inputMetadata, outputNames } } or { failed: message }.
 * Then per message in, { id, feeds: { name: { type, data, dims } }, outputs: [{ name, into: Float32Array }] },
 * one out: { id, computeMs } or { id, error: message }. `data` and `into` live in SharedArrayBuffers
 * the main thread reuses, so no buffer is allocated on its side per run (each one would count
 * towards its next full garbage collection). onnxruntime does not take shared memory, so the feeds
 * are copied into arrays of this thread's own first, and the output out of onnxruntime's.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';

const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);
let session;
try {
  session = await ort.InferenceSession.create(workerData.model, workerData.options);
} catch (err) {
  port.postMessage({ failed: err instanceof Error ? err.message : String(err) });
}
if (session) {
  const s = session;
  port.postMessage({ ready: { inputNames: s.inputNames, inputMetadata: s.inputMetadata, outputNames: s.outputNames } });

  /** This thread's copies of the feeds, by name, reused while the size stays the same. */
  const own = new Map();
  /** @param {string} name @param {Uint8Array | Float32Array} shared */
  const local = (name, shared) => {
    let a = own.get(name);
    if (!a || a.length !== shared.length || a.constructor !== shared.constructor)
      own.set(name, (a = new /** @type {any} */ (shared.constructor)(shared.length)));
    a.set(shared);
    return a;
  };

  /** @param {{ id: number, feeds: Record<string, { type: 'uint8' | 'float32', data: Uint8Array | Float32Array, dims: number[] }>, outputs: { name: string, into: Float32Array }[] }} m */
  const run = async (m) => {
    try {
      const tensors = Object.fromEntries(
        Object.entries(m.feeds).map(([name, f]) => [name, new ort.Tensor(f.type, local(name, f.data), f.dims)]),
      );
      const t0 = performance.now();
      const result = await s.run(tensors);
      const computeMs = performance.now() - t0;
      for (const o of m.outputs) {
        const output = /** @type {Float32Array} */ (result[o.name].data);
        if (output.length !== o.into.length)
          throw new Error(`output "${o.name}" has ${output.length} values, expected ${o.into.length}`);
        o.into.set(output);
      }
      port.postMessage({ id: m.id, computeMs });
    } catch (err) {
      port.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) });
    }
  };
  // One run at a time, in the order asked (the session's intra-op threads do the parallel work), so
  // each run's computeMs is its own and not the wait behind another.
  let queue = Promise.resolve();
  port.on('message', (m) => {
    // (run answers every message itself; the catch keeps one failure from stopping the queue)
    queue = queue.then(() => run(m)).catch(() => {});
  });
}
