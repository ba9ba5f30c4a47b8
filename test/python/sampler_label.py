"""The training sampler's real pairs under misregistration: the label lies where the after image shows the new
building, whatever the shift between the dates. Prints what it checked as JSON (`labelOffRoof`: the samples
whose label is not the roof); test/unit.sampler.test.ts reads it."""

import json
import os
import random
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'models', 'siam-unet-lite'))
from sampler import Sampler  # noqa: E402

# one pair: plain ground on both dates, and a new 24 × 40 px roof, bright, on the after date only
before = torch.full((3, 160, 160), 0.3)
after = before.clone()
after[:, 60:84, 50:90] = 0.9
label = torch.zeros(1, 160, 160)
label[:, 60:84, 50:90] = 1

sampler = Sampler([('pair', before, after, label)], [], torch.zeros(0, 4, 96, 96), 64, torch.device('cpu'), random.Random(7),
                  isolated=True)
# scale 1: no resampling, so the roof's edge stays sharp
a, b, lab = sampler.real(200, scale=(1, 1))
roof = (b[:, :1] > 0.6).float()
off = [i for i in range(len(lab)) if not torch.equal(lab[i, :1], roof[i])]
with_roof = sum(int(roof[i].sum() > 0) for i in range(len(lab)))
# in-context change: the roof built, half built or topped on one date; its label lies on the roof of the after crop
a, b, lab = sampler.isolated(100, scale=(1, 1))
roof = (b[:, :1] > 0.6).float()
iso_off = [i for i in range(len(lab)) if float((lab[i, :1] * (1 - roof[i])).sum()) > 0]
iso_labelled = sum(int(lab[i, :1].sum() > 0) for i in range(len(lab)))
print(json.dumps({'samples': 200, 'withRoof': with_roof, 'labelOffRoof': off,
                  'isolated': {'samples': 100, 'labelled': iso_labelled, 'labelOffRoof': iso_off}}))
