import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { buildFeeds, sigmoidInPlace, type ChangeModel, type ModelInput, type ModelRun } from '../change.model.ts';
import { BadInputError } from '../../core/errors.ts';
import { loadManifest, type ModelManifest } from './model.manifest.ts';
import { SessionThread, type GraphInfo } from './model.session.ts';
import { arrayPool } from '../array.pool.ts';

export interface OnnxModelOptions {
  /** Threads for one inference (onnxruntime intra-op); default: every core Node sees (os.availableParallelism). */
  intraOpThreads?: number;
}

/**
 * A change model running in onnxruntime-node. Create once per worker process and reuse.
 *
 * The session lives on a thread of its own (model.thread.mjs): onnxruntime-node computes on the
 * thread that calls it, and on the main thread a run would hold up everything else in the
 * process for its whole length. Runs are taken one at a time, in the order asked. The probability
 * arrays come from arrayPool: whoever is done with one may hand it back (detect does after blending).
 */
export class OnnxChangeModel implements ChangeModel {
  private closed = false;
  /** A new session thread while one is being started after the last one died. */
  private restarting: Promise<SessionThread> | null = null;

  private constructor(
    readonly manifest: ModelManifest,
    private session: SessionThread,
    private readonly startSession: () => Promise<SessionThread>,
    private readonly onnxPath: string,
  ) {}

  static async load(modelDir: string, opts: OnnxModelOptions = {}): Promise<OnnxChangeModel> {
    const { manifest, onnxPath } = loadManifest(modelDir);
    let bytes: Buffer;
    try {
      bytes = readFileSync(onnxPath);
    } catch (err) {
      throw new BadInputError('model_file', `${onnxPath}: cannot read model file (${(err as Error).message})`, {
        file: onnxPath,
      });
    }
    if (manifest.sha256) {
      const found = createHash('sha256').update(bytes).digest('hex');
      if (found !== manifest.sha256)
        throw new BadInputError(
          'model_file',
          `${onnxPath}: sha256 ${found} differs from the manifest's ${manifest.sha256}`,
          { file: onnxPath },
        );
    }
    const bandsPx = manifest.bands.indices.length * 64 * 64;
    const startSession = async () => {
      const s = await SessionThread.start(onnxPath, bytes, {
        intraOpNumThreads: opts.intraOpThreads ?? availableParallelism(),
        graphOptimizationLevel: 'all',
      });
      try {
        checkGraph(manifest, s.graph, onnxPath);
        // onnxruntime's first two runs of a session are slow (about 0.5 s each on a 576² pair here, and
        // again the first of every new input shape); one tiny run as it starts, and again after a restart,
        // takes the second away. A model of one window size (no maxWindowPx) meets only one shape.
        if (manifest.maxWindowPx) {
          const zeros = () => (manifest.inputType === 'uint8' ? new Uint8Array(bandsPx) : new Float32Array(bandsPx));
          const names = [manifest.output.name, ...(manifest.interior ? [manifest.interior.name] : [])];
          const r = await s.run(buildFeeds(manifest, zeros(), zeros(), 1, 64, 64), names, 64 * 64);
          arrayPool.give(...r.outputs);
        }
      } catch (err) {
        await s.close();
        throw err;
      }
      return s;
    };
    return new OnnxChangeModel(manifest, await startSession(), startSession, onnxPath);
  }

  async run(
    before: ModelInput,
    after: ModelInput,
    batch: number,
    heightPx: number,
    widthPx: number,
  ): Promise<ModelRun> {
    const feeds = buildFeeds(this.manifest, before, after, batch, heightPx, widthPx);
    const session = await this.live();
    // (the thread refuses an output of another size than batch×1×height×width, naming it)
    const names = [this.manifest.output.name, ...(this.manifest.interior ? [this.manifest.interior.name] : [])];
    const {
      outputs: [output, interior],
      computeMs,
    } = await session.run(feeds, names, batch * heightPx * widthPx);
    return {
      probability: this.manifest.output.kind === 'logits' ? sigmoidInPlace(output) : output,
      ...(interior ? { interior } : {}),
      computeMs,
    };
  }

  /**
   * The session thread, started again when the last one died: the runs it held fail (their jobs
   * are retried), and a worker that runs for months goes on with the next one instead of failing
   * every job after.
   */
  private async live(): Promise<SessionThread> {
    if (this.closed) throw new Error(`${this.onnxPath}: the model was closed`);
    if (this.session.alive) return this.session;
    // The new session becomes current inside the one shared start, so a run arriving meanwhile
    // waits for it instead of starting a second thread. A failure to start again is not bad input
    // (the same file loaded before): it is reported as an error the job may retry.
    this.restarting ??= this.startSession()
      .then(
        async (fresh) => {
          if (this.closed) {
            await fresh.close();
            throw new Error(`${this.onnxPath}: the model was closed`);
          }
          this.session = fresh;
          return fresh;
        },
        (err: Error) => {
          throw new Error(`${this.onnxPath}: could not start the onnxruntime thread again: ${err.message}`);
        },
      )
      .finally(() => (this.restarting = null));
    return this.restarting;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.session.close();
  }
}

/** The manifest's names and input type must be the graph's: a mismatch is refused at load, naming the file. */
function checkGraph(manifest: ModelManifest, graph: GraphInfo, onnxPath: string): void {
  for (const name of [manifest.inputs.before, manifest.inputs.after]) {
    if (!graph.inputNames.includes(name))
      throw new BadInputError(
        'model_file',
        `${onnxPath}: graph has no input "${name}" (inputs: ${graph.inputNames.join(', ')})`,
        { file: onnxPath },
      );
  }
  for (const meta of graph.inputMetadata) {
    if (
      meta.isTensor &&
      [manifest.inputs.before, manifest.inputs.after].includes(meta.name) &&
      meta.type !== manifest.inputType
    ) {
      throw new BadInputError(
        'model_file',
        `${onnxPath}: graph input "${meta.name}" is ${meta.type} but the manifest's inputType is ${manifest.inputType}`,
        { file: onnxPath },
      );
    }
  }
  for (const name of [manifest.output.name, ...(manifest.interior ? [manifest.interior.name] : [])]) {
    if (!graph.outputNames.includes(name))
      throw new BadInputError(
        'model_file',
        `${onnxPath}: graph has no output "${name}" (outputs: ${graph.outputNames.join(', ')})`,
        { file: onnxPath },
      );
  }
}
