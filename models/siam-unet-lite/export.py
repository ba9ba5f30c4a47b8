"""
Turns a training run (weights.npz + training.json from train.py) into the model folder tuban loads:
model.onnx (dynamic batch/height/width; outputs `probability` and, for models trained with the interior
head, `interior`), weights.npz (for fine-tuning), manifest.json.

  /usr/bin/python3 models/siam-unet-lite/export.py RUN_DIR MODEL_DIR [--version 2.0.0] [--name siam-unet-lite]
      [--threshold 0.5] [--min-mean-prob P] [--interior-threshold 0.5] [--no-interior] [--flip] [--scales 1,1.5] [--float-input]

The graph takes 8-bit samples, pixel-interleaved ([batch, height, width, band] uint8, transposed and
normalised inside the graph) unless --float-input asks for float32 inputs [batch, band, height, width]
already normalised by the manifest's mean and std.
"""
import argparse
import hashlib
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch  # noqa: E402

from net import SiamUNetLite, export_onnx, load_weights  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('run')
    ap.add_argument('model_dir')
    ap.add_argument('--name', default='siam-unet-lite')
    ap.add_argument('--version', default='2.0.0')
    ap.add_argument('--threshold', type=float, default=0.5, help="the manifest's defaultThreshold (pick it with `tuban eval`'s sweep on the validation images)")
    ap.add_argument('--min-mean-prob', type=float, default=None, help="the manifest's minMeanProbability: patches with a lower mean change probability are dropped (pick it on the training images, README)")
    ap.add_argument('--interior-threshold', type=float, default=0.5, help='interior probability that seeds a split of touching buildings')
    ap.add_argument('--no-interior', action='store_true', help='export the change output only')
    ap.add_argument('--symmetric', action='store_true', help='average the probabilities of both date orders in the graph (the encoder runs once per date)')
    ap.add_argument('--flip', action='store_true', help='average the probabilities of the scene and its mirror image in the graph (twice the inference work)')
    ap.add_argument('--scales', default='1', help='run the network on the scene resampled by each of these factors, e.g. 1,1.5, '
                    'and keep the geometric mean of their change probabilities and the first one\'s interior (inference work: '
                    'the sum of their squares; 1,1.5 is 3.25 times 1)')
    ap.add_argument('--float-input', action='store_true', help='float32 inputs normalised outside the graph')
    args = ap.parse_args()
    try:
        scales = tuple(float(v) for v in args.scales.split(','))
    except ValueError:
        raise SystemExit(f'--scales {args.scales}: expected factors such as 1,1.5')
    if not all(0.25 <= s <= 4 for s in scales) or len(set(scales)) != len(scales):
        raise SystemExit(f'--scales {args.scales}: expected distinct factors between 0.25 and 4')
    if args.float_input and (args.flip or scales != (1.0,)):
        raise SystemExit('--flip and --scales are exported for the 8-bit graph only, not with --float-input')
    with open(os.path.join(args.run, 'training.json')) as f:
        record = json.load(f)
    net = SiamUNetLite(tuple(record['architecture']['widths']), record['architecture'].get('refine', 0))
    load_weights(net, os.path.join(args.run, 'weights.npz'))
    net.eval()
    os.makedirs(args.model_dir, exist_ok=True)
    onnx_path = os.path.join(args.model_dir, 'model.onnx')
    interior = not args.no_interior and 'interior' in record['architecture'].get('outputs', [])
    export_onnx(net, onnx_path, uint8=not args.float_input, interior=interior, symmetric=args.symmetric, flip=args.flip, scales=scales)
    if os.path.abspath(args.run) != os.path.abspath(args.model_dir):
        shutil.copyfile(os.path.join(args.run, 'weights.npz'), os.path.join(args.model_dir, 'weights.npz'))
        shutil.copyfile(os.path.join(args.run, 'training.json'), os.path.join(args.model_dir, 'training.json'))
    with open(onnx_path, 'rb') as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    manifest = {
        'name': args.name,
        'version': args.version,
        'description': 'Siamese U-Net (shared encoder, fusion of a, b and |a−b| at 1/2–1/16, decoder to 1/2) for building change in 0.5 m RGB' + (', with a building-interior output that splits touching buildings.' if interior else '.'),
        'file': 'model.onnx',
        'sha256': sha,
        'inputs': {'before': 'before', 'after': 'after'},
        'output': {'name': 'probability', 'kind': 'probability'},
        **({'interior': {'name': 'interior', 'threshold': args.interior_threshold}} if interior else {}),
        'bands': {'indices': [0, 1, 2], 'names': ['red', 'green', 'blue']},
        'normalisation': record['normalisation'],
        'inputType': 'float32' if args.float_input else 'uint8',
        'tileSizePx': 512,
        'maxWindowPx': 1024,
        'overlapPx': 64,
        'defaultThreshold': args.threshold,
        **({'minMeanProbability': args.min_mean_prob} if args.min_mean_prob is not None else {}),
        'gsdM': 0.5,
        'provenance': {
            'kind': 'trained',
            'recipe': record['recipe'],
            'command': 'scripts/train-detector.sh RUN_DIR (defaults in train.py) then models/siam-unet-lite/export.py RUN_DIR models/siam-unet-lite',
            'architecture': record['architecture'],
            'trainingData': record['trainingData'],
            'split': record.get('split', {}), 'splitFile': record.get('splitFile'),
            'backgrounds': record['backgrounds'] if record['mix'].get('synthetic', 0) or record['mix'].get('procedural', 0) else [],
            'mix': record['mix'],
            'seed': record['seed'],
            'steps': record['steps'], 'batch': record['batch'], 'crop': record['crop'], 'lr': record['lr'],
            'device': record['device'], 'torch': record['torch'], 'trainingSeconds': record['trainingSeconds'],
            'initialisedFrom': record.get('initialisedFrom'), 'freezeBn': record.get('freezeBn'), 'anchor': record.get('anchor'),
            'maxMinutes': record.get('maxMinutes'), 'scale': record.get('scale'), 'same': record.get('same'), 'interiorWeight': record.get('interiorWeight'),
            'metricsAtExport': {'threshold': 0.5, 'pixel': record['devMetrics'], 'note': 'PyTorch pixel metrics on the development sets (levir-cd-t38: its validation images only) at the end of training; `tuban eval` gives the full table through onnxruntime'},
            'exportedWith': {'torch': torch.__version__, 'symmetric': args.symmetric, 'flip': args.flip, **({'scales': list(scales)} if scales != (1.0,) else {})},
        },
    }
    with open(os.path.join(args.model_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write('\n')
    print(f'wrote {args.model_dir}: model.onnx ({os.path.getsize(onnx_path)} bytes, sha256 {sha[:12]}…), manifest.json')


if __name__ == '__main__':
    main()
