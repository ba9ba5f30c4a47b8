import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import ort from 'onnxruntime-node';
import { buildFeeds, sigmoidInPlace, type ChangeModel, type ModelInput } from './change.model.ts';
import { BadInputError } from './errors.ts';
import { loadManifest, type ModelManifest } from './model.manifest.ts';

export interface OnnxModelOptions {
  /** Threads for one inference (onnxruntime intra-op); default: onnxruntime's choice. */
  intraOpThreads?: number;
}

/** A change model running in onnxruntime-node. Create once per worker process and reuse. */
export class OnnxChangeModel implements ChangeModel {
  private constructor(readonly manifest: ModelManifest, private readonly session: ort.InferenceSession) {}

  static async load(modelDir: string, opts: OnnxModelOptions = {}): Promise<OnnxChangeModel> {
    const { manifest, onnxPath } = loadManifest(modelDir);
    let bytes: Buffer;
    try {
      bytes = readFileSync(onnxPath);
    } catch (err) {
      throw new BadInputError('model_file', `${onnxPath}: cannot read model file (${(err as Error).message})`, { file: onnxPath });
    }
    if (manifest.sha256) {
      const found = createHash('sha256').update(bytes).digest('hex');
      if (found !== manifest.sha256) throw new BadInputError('model_file', `${onnxPath}: sha256 ${found} differs from the manifest's ${manifest.sha256}`, { file: onnxPath });
    }
    const session = await ort.InferenceSession.create(bytes, {
      ...(opts.intraOpThreads ? { intraOpNumThreads: opts.intraOpThreads } : {}),
      graphOptimizationLevel: 'all',
    });
    for (const name of [manifest.inputs.before, manifest.inputs.after]) {
      if (!session.inputNames.includes(name)) throw new BadInputError('model_file', `${onnxPath}: graph has no input "${name}" (inputs: ${session.inputNames.join(', ')})`, { file: onnxPath });
    }
    for (const meta of session.inputMetadata) {
      if (meta.isTensor && [manifest.inputs.before, manifest.inputs.after].includes(meta.name) && meta.type !== manifest.inputType) {
        throw new BadInputError('model_file', `${onnxPath}: graph input "${meta.name}" is ${meta.type} but the manifest's inputType is ${manifest.inputType}`, { file: onnxPath });
      }
    }
    if (!session.outputNames.includes(manifest.output.name)) {
      throw new BadInputError('model_file', `${onnxPath}: graph has no output "${manifest.output.name}" (outputs: ${session.outputNames.join(', ')})`, { file: onnxPath });
    }
    return new OnnxChangeModel(manifest, session);
  }

  async run(before: ModelInput, after: ModelInput, batch: number, heightPx: number, widthPx: number): Promise<Float32Array> {
    const feeds = buildFeeds(this.manifest, before, after, batch, heightPx, widthPx);
    const tensors: Record<string, ort.Tensor> = {};
    for (const [name, f] of Object.entries(feeds)) tensors[name] = f.data instanceof Uint8Array ? new ort.Tensor('uint8', f.data, f.dims) : new ort.Tensor('float32', f.data, f.dims);
    const result = await this.session.run(tensors);
    const out = result[this.manifest.output.name];
    const data = out.data as Float32Array;
    if (data.length !== batch * heightPx * widthPx) {
      throw new Error(`model ${this.manifest.name}: output has ${data.length} values, expected ${batch}×1×${heightPx}×${widthPx}`);
    }
    // onnxruntime-node hands each output over in an array of its own: no copy needed
    return this.manifest.output.kind === 'logits' ? sigmoidInPlace(data) : data;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
