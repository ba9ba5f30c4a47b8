"""
int8 quantisation of a siam-unet-lite model folder (static, QDQ, per-channel weights), calibrated on
labelled training pairs the validation sets do not hold. Needs Python's onnxruntime and onnx (not torch):

  python models/siam-unet-lite/quantize.py MODEL_DIR OUT_DIR --calibrate DIR [--calibrate DIR ...]
      [--split models/siam-unet-lite/split.json] [--pairs 16] [--size 512] [--version V]

OUT_DIR gets model.onnx and a manifest.json that is MODEL_DIR's with the new sha256, version (default
MODEL_DIR's + "-int8") and a provenance note; weights.npz is not copied (fine-tune the float model).
"""
import argparse
import hashlib
import json
import os
import random
import shutil

import numpy as np
from PIL import Image
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process


class Pairs(CalibrationDataReader):
    def __init__(self, folders, split, n, size, seed=7):
        held = {}
        if split:
            with open(split) as f:
                held = {k: set(v) for k, v in json.load(f)['validation'].items()}
        items = []
        for d in folders:
            name = os.path.basename(os.path.normpath(d))
            for f in sorted(os.listdir(os.path.join(d, 'A'))):
                if f not in held.get(name, ()):
                    items.append((d, f))
        random.Random(seed).shuffle(items)
        self.items = items[:n]
        self.size = size
        self.i = 0

    def get_next(self):
        if self.i >= len(self.items):
            return None
        d, f = self.items[self.i]
        self.i += 1
        a = np.asarray(Image.open(os.path.join(d, 'A', f)).convert('RGB'))
        b = np.asarray(Image.open(os.path.join(d, 'B', f)).convert('RGB'))
        s = min(self.size, a.shape[0], a.shape[1])
        return {'before': a[None, :s, :s].copy(), 'after': b[None, :s, :s].copy()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('model_dir')
    ap.add_argument('out_dir')
    ap.add_argument('--calibrate', action='append', required=True)
    ap.add_argument('--split')
    ap.add_argument('--pairs', type=int, default=16)
    ap.add_argument('--size', type=int, default=512)
    ap.add_argument('--version')
    ap.add_argument('--skip-preprocess', action='store_true')
    ap.add_argument('--ops', default='Conv,ConvTranspose', help='operator types to quantise, comma-separated ("all": every one onnxruntime can)')
    ap.add_argument('--format', choices=['qdq', 'qoperator'], default='qdq')
    args = ap.parse_args()
    with open(os.path.join(args.model_dir, 'manifest.json')) as f:
        manifest = json.load(f)
    if manifest.get('inputType') != 'uint8':
        raise SystemExit(f"{args.model_dir}: expected a model with uint8 inputs (export.py without --float-input)")
    os.makedirs(args.out_dir, exist_ok=True)
    src = os.path.join(args.model_dir, manifest['file'])
    pre = os.path.join(args.out_dir, 'model.pre.onnx')
    if args.skip_preprocess:
        shutil.copyfile(src, pre)
    else:
        quant_pre_process(src, pre, skip_symbolic_shape=True)
    out = os.path.join(args.out_dir, 'model.onnx')
    quantize_static(pre, out, Pairs(args.calibrate, args.split, args.pairs, args.size), quant_format=QuantFormat.QDQ if args.format == 'qdq' else QuantFormat.QOperator,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    op_types_to_quantize=None if args.ops == 'all' else args.ops.split(','))
    os.remove(pre)
    with open(out, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    manifest.update({'file': 'model.onnx', 'sha256': sha, 'version': args.version or manifest['version'] + '-int8'})
    manifest['provenance'] = {**manifest.get('provenance', {}), 'quantised': {
        'from': f"{manifest['name']} {json.load(open(os.path.join(args.model_dir, 'manifest.json')))['version']}",
        'method': f'onnxruntime quantize_static, {args.format}, per-channel int8 weights, uint8 activations, ops {args.ops}',
        'calibration': [os.path.basename(os.path.normpath(d)) for d in args.calibrate], 'pairs': args.pairs, 'size': args.size}}
    with open(os.path.join(args.out_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write('\n')
    print(f'wrote {out} ({os.path.getsize(out)} bytes, sha256 {sha[:12]}…)')


if __name__ == '__main__':
    main()
