"""train.py's pixel evaluation on a folder whose label is known only in part (`tuban training export`'s known/
channel): pixels no verdict judged count neither as a miss nor as a false alarm. Prints the counts as JSON;
test/unit.train.evaluate.test.ts reads it."""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..', 'models', 'siam-unet-lite'))
from net import MEAN, STD  # noqa: E402
from train import evaluate  # noqa: E402


class Fixed(torch.nn.Module):
    """A 'network' that says change where the after image's first band, as evaluate normalises it, is above 0."""

    def forward(self, a, b):
        return torch.cat([b[:, :1] * 100, torch.zeros_like(b[:, :1])], 1)


# 8 × 8 px: the label marks 4 px; the net finds 3 of them and marks 4 px off them. One missed pixel and 2 of the
# false ones lie on ground no verdict judged (known 0).
label = torch.zeros(1, 8, 8)
label[0, 0, :4] = 1
pred = torch.zeros(1, 8, 8)
pred[0, 0, 1:4] = 1
pred[0, 4, :4] = 1
known = torch.ones(1, 8, 8)
known[0, 4, :2] = 0
known[0, 0, 0] = 0
a = torch.zeros(3, 8, 8)
b = torch.tensor(MEAN).view(3, 1, 1) + (pred * 2 - 1) * torch.tensor(STD).view(3, 1, 1)  # normalised: +1 / -1
cpu = torch.device('cpu')
with_known = evaluate(Fixed(), [('verdicts', 1.0, [('x', a, b, torch.cat([label, known]))])], cpu)['verdicts']
plain = evaluate(Fixed(), [('plain', 1.0, [('x', a, b, label)])], cpu)['plain']
print(json.dumps({'withKnown': with_known, 'plain': plain}))
