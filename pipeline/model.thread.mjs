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
 * Messages in: { id, feeds: { name: { type, data, dims } }, output }. Out: first { ready: { inputNames,
 * inputMetadata, outputNames } } or { failed: message }; then per run { id, output: Float32Array,
 * inputs: the feeds' arrays handed back, computeMs } or { id, error: message }. Arrays move both ways
 * by transfer where they own their whole buffer, so nothing is copied.
 */
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';

/** @param {ArrayBufferView[]} arrays the buffers that can move (each whole, none twice) */
function transferable(arrays) {
  const out = new Set();
  for (const a of arrays) if (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength && a.buffer instanceof ArrayBuffer) out.add(a.buffer);
  return [...out];
}

const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);
let session;
try {
  session = await ort.InferenceSession.create(workerData.model, workerData.options);
} catch (err) {
  port.postMessage({ failed: /** @type {Error} */ (err).message });
}
if (session) {
  const s = session;
  port.postMessage({ ready: { inputNames: s.inputNames, inputMetadata: s.inputMetadata, outputNames: s.outputNames } });
  /** @param {{ id: number, feeds: Record<string, { type: 'uint8' | 'float32', data: Uint8Array | Float32Array, dims: number[] }>, output: string }} m */
  const run = async (m) => {
    const inputs = Object.values(m.feeds).map((f) => f.data);
    try {
      const tensors = Object.fromEntries(Object.entries(m.feeds).map(([name, f]) => [name, new ort.Tensor(f.type, f.data, f.dims)]));
      const t0 = performance.now();
      const result = await s.run(tensors);
      const computeMs = performance.now() - t0;
      const output = /** @type {Float32Array} */ (result[m.output].data);
      port.postMessage({ id: m.id, output, inputs, computeMs }, transferable([output, ...inputs]));
    } catch (err) {
      port.postMessage({ id: m.id, error: /** @type {Error} */ (err).message, inputs }, transferable(inputs));
    }
  };
  // One run at a time, in the order asked (the session's intra-op threads do the parallel work), so
  // each run's computeMs is its own and not the wait behind another.
  let queue = Promise.resolve();
  port.on('message', (m) => {
    queue = queue.then(() => run(m));
  });
}
