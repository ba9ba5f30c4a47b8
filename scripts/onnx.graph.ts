/**
 * A very small ONNX graph builder over onnx-proto, enough to express classical detectors as
 * ONNX graphs so they load through the same manifest and runtime as trained models.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type Attr = number | number[] | string;

export class GraphBuilder {
  private nodes: unknown[] = [];
  private inits: unknown[] = [];
  private counter = 0;

  constant(name: string, values: number[], dims: number[] = [values.length]): string {
    this.inits.push({ name, dataType: onnx.TensorProto.DataType.FLOAT, dims, floatData: values });
    return name;
  }

  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, name?: string): string {
    const out = name ?? `${opType.toLowerCase()}_${this.counter++}`;
    const attribute = Object.entries(attrs).map(([k, v]) => {
      if (typeof v === 'string') return { name: k, type: onnx.AttributeProto.AttributeType.STRING, s: Buffer.from(v) };
      if (Array.isArray(v)) return { name: k, type: onnx.AttributeProto.AttributeType.INTS, ints: v };
      if (Number.isInteger(v)) return { name: k, type: onnx.AttributeProto.AttributeType.INT, i: v };
      return { name: k, type: onnx.AttributeProto.AttributeType.FLOAT, f: v };
    });
    this.nodes.push({ opType, input: inputs, output: [out], name: out, attribute });
    return out;
  }

  /** Serialise with float32 NCHW inputs/outputs of dynamic batch, height and width. */
  encode(opts: {
    inputs: { name: string; channels: number }[];
    outputs: { name: string; channels: number }[];
    opset: number;
    producer: string;
    docString: string;
    metadata: Record<string, string>;
  }): Uint8Array {
    const valueInfo = (name: string, channels: number) => ({
      name,
      type: {
        tensorType: {
          elemType: onnx.TensorProto.DataType.FLOAT,
          shape: {
            dim: [{ dimParam: 'batch' }, { dimValue: channels }, { dimParam: 'height' }, { dimParam: 'width' }],
          },
        },
      },
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: opts.producer,
      docString: opts.docString,
      opsetImport: [{ domain: '', version: opts.opset }],
      metadataProps: Object.entries(opts.metadata).map(([key, value]) => ({ key, value })),
      graph: {
        name: opts.producer,
        node: this.nodes,
        initializer: this.inits,
        input: opts.inputs.map((i) => valueInfo(i.name, i.channels)),
        output: opts.outputs.map((o) => valueInfo(o.name, o.channels)),
      },
    } as never);
    return onnx.ModelProto.encode(model).finish();
  }
}
