"""
Where a model's pixel errors lie on a labelled folder's validation images: false pixels within K px of a
labelled building or farther, missed pixels within K px of a building's edge or deeper, and those in buildings
missed whole; the F1 with the errors in the K px band around every edge left out (an outline off by at most
K px costs nothing; the band's hits still count). The probabilities are the exported graph's
with the flip (`export.py --flip`), from the PyTorch weights.

  /usr/bin/python3 models/siam-unet-lite/edge_errors.py [--weights models/siam-unet-lite/weights.npz]
      [--dataset ../shared/data/change-pairs/levir-cd-t38] [--split models/siam-unet-lite/split.json]
      [--threshold 0.45] [--band 2]
"""
import argparse
import json
import os
import sys
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from net import SiamUNetLite, heads, load_weights, normalise, refine_channels, widths_of  # noqa: E402


def image(path):
    return torch.from_numpy(np.asarray(Image.open(path).convert('RGB'), dtype=np.float32) / 255).permute(2, 0, 1)[None]


def dilate(m, k):
    return F.max_pool2d(m, 2 * k + 1, 1, k)


def erode(m, k):
    return 1 - dilate(1 - m, k)


def missed_whole(label, predicted):
    """Pixels of the label's 4-connected buildings that hold no predicted pixel."""
    seen = np.zeros_like(label)
    missed = 0
    h, w = label.shape
    for i0, j0 in zip(*np.nonzero(label)):
        if seen[i0, j0]:
            continue
        queue, size, hit = deque([(i0, j0)]), 0, False
        seen[i0, j0] = True
        while queue:
            i, j = queue.popleft()
            size += 1
            hit |= bool(predicted[i, j])
            for u, v in ((i + 1, j), (i - 1, j), (i, j + 1), (i, j - 1)):
                if 0 <= u < h and 0 <= v < w and label[u, v] and not seen[u, v]:
                    seen[u, v] = True
                    queue.append((u, v))
        if not hit:
            missed += size
    return missed


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument('--weights', default=os.path.join(here, 'weights.npz'))
    ap.add_argument('--dataset', default=os.path.join(here, '../../../shared/data/change-pairs/levir-cd-t38'))
    ap.add_argument('--split', default=os.path.join(here, 'split.json'))
    ap.add_argument('--threshold', type=float, default=0.45)
    ap.add_argument('--band', type=int, default=2, help='px either side of an edge')
    args = ap.parse_args()
    folder = os.path.basename(os.path.normpath(args.dataset))
    with open(args.split) as f:
        names = json.load(f)['validation'].get(folder)
    if not names:
        raise SystemExit(f'{args.split}: no validation images for {folder}')
    with np.load(args.weights) as z:
        widths = widths_of(z)
    net = SiamUNetLite(widths, refine=refine_channels(args.weights))
    load_weights(net, args.weights)
    net.eval()
    k = args.band
    tot = dict(tp=0.0, fp=0.0, fn=0.0, fp_edge=0.0, fn_edge=0.0, fn_whole=0.0)
    for name in names:
        a = normalise(image(os.path.join(args.dataset, 'A', name)))
        b = normalise(image(os.path.join(args.dataset, 'B', name)))
        with torch.no_grad():
            p = heads(net, a, b, False, False, True)
        y = np.asarray(Image.open(os.path.join(args.dataset, 'label', name)).convert('L')) > 127
        yt = torch.from_numpy(y.astype(np.float32))[None, None]
        pr = (p >= args.threshold).float()
        tot['tp'] += (pr * yt).sum().item()
        tot['fp'] += (pr * (1 - yt)).sum().item()
        tot['fn'] += ((1 - pr) * yt).sum().item()
        tot['fp_edge'] += (pr * (1 - yt) * dilate(yt, k)).sum().item()
        tot['fn_edge'] += ((1 - pr) * yt * (1 - erode(yt, k))).sum().item()
        tot['fn_whole'] += missed_whole(y, pr[0, 0].numpy() > 0)
    tp, fp, fn = tot['tp'], tot['fp'], tot['fn']
    print(f'{folder}, {len(names)} validation images, threshold {args.threshold}: '
          f'pixel P {tp / (tp + fp):.3f} R {tp / (tp + fn):.3f} F1 {2 * tp / (2 * tp + fp + fn):.3f}')
    print(f'false pixels {fp:.0f}: within {k} px of a labelled building {tot["fp_edge"] / fp:.1%}, farther {1 - tot["fp_edge"] / fp:.1%}')
    print(f'missed pixels {fn:.0f}: within {k} px of the edge {tot["fn_edge"] / fn:.1%}, deeper {1 - tot["fn_edge"] / fn:.1%}; '
          f'in buildings missed whole {tot["fn_whole"] / fn:.1%}')
    print(f'F1 with the errors within {k} px of an edge left out: '
          f'{2 * tp / (2 * tp + fp - tot["fp_edge"] + fn - tot["fn_edge"]):.3f}')


if __name__ == '__main__':
    main()
