import { Worker } from 'node:worker_threads';
import type ort from 'onnxruntime-node';
import { arrayPool } from '../array.pool.ts';
import { buildFeeds, type ModelInput } from '../change.model.ts';
import { BadInputError } from '../../core/errors.ts';

/** The graph's inputs and outputs, as the session reports them. */
export interface GraphInfo {
  inputNames: readonly string[];
  inputMetadata: readonly ort.InferenceSession.ValueMetadata[];
  outputNames: readonly string[];
}

type Reply = { id: number; computeMs?: number; error?: string };

/**
 * An onnxruntime session on its own thread (model.thread.mjs), and the runs waiting for it. Feeds
 * and output travel in SharedArrayBuffers from arrayPool: the thread reads the feeds and writes
 * the output in place, and nothing is allocated on this side per run. (Moving fresh buffers
 * between threads instead doubled the main thread's garbage collection: each arriving buffer
 * counts towards the next full collection.) Feeds not in shared memory are copied into it.
 */
export class SessionThread {
  private nextId = 0;
  private readonly pending = new Map<
    number,
    {
      copies: ModelInput[];
      outputs: Float32Array[];
      resolve: (r: { outputs: Float32Array[]; computeMs: number }) => void;
      reject: (e: Error) => void;
    }
  >();
  /** Set once the thread has died: every later run fails with it. */
  private dead: Error | null = null;

  private constructor(
    private readonly worker: Worker,
    readonly graph: GraphInfo,
    private readonly onnxPath: string,
  ) {
    worker.on('message', (m: Reply) => this.settle(m));
    const die = (err: Error) => {
      this.dead = err;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err: Error) => die(new Error(`${onnxPath}: the onnxruntime thread failed: ${err.message}`)));
    worker.on('exit', (code) => die(new Error(`${onnxPath}: the onnxruntime thread has stopped (exit code ${code})`)));
    // an idle session thread does not keep the process alive; a run in flight does (run())
    worker.unref();
  }

  static async start(
    onnxPath: string,
    bytes: Uint8Array,
    options: ort.InferenceSession.SessionOptions,
  ): Promise<SessionThread> {
    const worker = new Worker(new URL('./model.thread.mjs', import.meta.url), {
      workerData: { model: bytes, options },
    });
    type First = { ready?: GraphInfo; failed?: string };
    // (listeners are removed one by one: removing all of a Worker's 'message' listeners stops its port)
    let onMessage!: (m: First) => void, onError!: (err: Error) => void, onExit!: (code: number) => void;
    const first = await new Promise<First>((resolve) => {
      onMessage = resolve;
      onError = (err) => resolve({ failed: err.message });
      onExit = (code) => resolve({ failed: `the onnxruntime thread exited (code ${code}) before loading the model` });
      worker.once('message', onMessage).once('error', onError).once('exit', onExit);
    });
    worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    if (!first.ready) {
      await worker.terminate();
      throw new BadInputError('model_file', `${onnxPath}: onnxruntime cannot load the model (${first.failed})`, {
        file: onnxPath,
      });
    }
    return new SessionThread(worker, first.ready, onnxPath);
  }

  get alive(): boolean {
    return this.dead === null;
  }

  /**
   * One run of the session. The caller keeps the feeds (read in place when they are in shared
   * memory, copied otherwise); each output is a shared array from arrayPool, to be handed back when done.
   */
  run(
    feeds: ReturnType<typeof buildFeeds>,
    outputNames: string[],
    outputLength: number,
  ): Promise<{ outputs: Float32Array[]; computeMs: number }> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    const copies: ModelInput[] = [];
    const inShared = (a: ModelInput): ModelInput => {
      if (a.buffer instanceof SharedArrayBuffer) return a;
      const c =
        a instanceof Uint8Array
          ? arrayPool.take(Uint8Array, a.length, false, true)
          : arrayPool.take(Float32Array, a.length, false, true);
      c.set(a);
      copies.push(c);
      return c;
    };
    const outputs = outputNames.map(() => arrayPool.take(Float32Array, outputLength, false, true));
    const message = {
      id,
      outputs: outputNames.map((name, k) => ({ name, into: outputs[k] })),
      feeds: Object.fromEntries(
        Object.entries(feeds).map(([name, f]) => [
          name,
          { type: f.data instanceof Uint8Array ? 'uint8' : 'float32', data: inShared(f.data), dims: f.dims },
        ]),
      ),
    };
    const done = new Promise<{ outputs: Float32Array[]; computeMs: number }>((resolve, reject) =>
      this.pending.set(id, { copies, outputs, resolve, reject }),
    );
    if (this.pending.size === 1) this.worker.ref();
    try {
      this.worker.postMessage(message);
    } catch (err) {
      this.forget(id);
      arrayPool.give(...copies, ...outputs);
      throw err;
    }
    return done;
  }

  private forget(id: number): void {
    this.pending.delete(id);
    if (!this.pending.size) this.worker.unref();
  }

  private settle(m: Reply): void {
    const p = this.pending.get(m.id);
    if (!p) return;
    this.forget(m.id);
    arrayPool.give(...p.copies);
    // only a reply with a compute time says the output was written
    if (typeof m.computeMs === 'number') p.resolve({ outputs: p.outputs, computeMs: m.computeMs });
    else {
      arrayPool.give(...p.outputs);
      p.reject(new Error(`${this.onnxPath}: ${m.error ?? 'the onnxruntime thread gave no result'}`));
    }
  }

  async close(): Promise<void> {
    // runs in flight end with the thread
    await this.worker.terminate();
  }
}
