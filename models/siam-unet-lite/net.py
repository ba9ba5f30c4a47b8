"""The siam-unet-lite network: a Siamese U-Net with change and building-interior heads, its input
normalisation, ONNX export (float or 8-bit input, flips averaged) and weights as .npz."""

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


WIDTHS = (16, 32, 64, 96)


# ----------------------------------------------------------------------------------------------
# Model


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, stride=1, k=3):
        super().__init__(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SiamUNetLite(nn.Module):
    """Shared encoder at 1/2..1/16, fusion of (a, b, |a−b|) at each scale, U-Net decoder to 1/2, bilinear to full.
    With `refine` > 0, a full-resolution step adds to the logits what a 3×3 convolution of both images, their
    difference and the upsampled decoder features gives (`refine` channels, then 3×3 to the two outputs): the
    decoder stops at 1/2, and most pixel errors lie within 1 m of a building's edge. Its last convolution
    starts at zero, so a net initialised from weights without it starts as they are."""

    def __init__(self, widths=WIDTHS, refine=0):
        super().__init__()
        w = widths
        self.refine_channels = refine
        self.enc = nn.ModuleList()
        cin = 3
        for c in w:
            self.enc.append(nn.Sequential(ConvBNReLU(cin, c, stride=2), ConvBNReLU(c, c)))
            cin = c
        self.fuse = nn.ModuleList([ConvBNReLU(3 * c, c, k=1) for c in w])
        self.dec = nn.ModuleList([ConvBNReLU(w[i + 1] + w[i], w[i]) for i in reversed(range(len(w) - 1))])
        self.head = nn.Conv2d(w[0], 2, 1)  # channel 0: change; channel 1: building interior (change eroded by ERODE_PX)
        if refine:
            self.refine = nn.Sequential(ConvBNReLU(9 + w[0], refine), nn.Conv2d(refine, 2, 3, 1, 1))
            nn.init.zeros_(self.refine[1].weight)
            nn.init.zeros_(self.refine[1].bias)

    def features(self, x):
        out = []
        for stage in self.enc:
            x = stage(x)
            out.append(x)
        return out

    def decode(self, fa, fb, before, after):
        d = [f(torch.cat([a, b, torch.abs(a - b)], 1)) for f, a, b in zip(self.fuse, fa, fb)]
        x = d[-1]
        for i, block in zip(reversed(range(len(d) - 1)), self.dec):
            x = F.interpolate(x, size=d[i].shape[-2:], mode='bilinear', align_corners=False)
            x = block(torch.cat([x, d[i]], 1))
        size = before.shape[-2:]
        logits = F.interpolate(self.head(x), size=size, mode='bilinear', align_corners=False)
        if not self.refine_channels:
            return logits
        x = F.interpolate(x, size=size, mode='bilinear', align_corners=False)
        return logits + self.refine(torch.cat([before, after, torch.abs(before - after), x], 1))

    def forward(self, before, after):
        return self.decode(self.features(before), self.features(after), before, after)

    def forward_symmetric(self, before, after):
        """Logits of both date orders, from one pass of the encoder per date (the label does not depend
        on the order, and training swapped dates at random): averaging them is test-time augmentation
        that costs the fusion and decoder again, not the encoder."""
        fa, fb = self.features(before), self.features(after)
        return self.decode(fa, fb, before, after), self.decode(fb, fa, after, before)


def heads(net, before, after, interior, symmetric=False, flip=False):
    """The graph's outputs: change probability, and with `interior` the building-interior probability
    as a second output (seeds that split touching buildings in vectorize). `symmetric` averages the
    probabilities of both date orders; `flip` those of the scene and its mirror image (twice the work)."""
    if symmetric:
        l1, l2 = net.forward_symmetric(before, after)
        p = (torch.sigmoid(l1) + torch.sigmoid(l2)) * 0.5
    else:
        p = torch.sigmoid(net(before, after))
    if flip:
        p = (p + torch.flip(torch.sigmoid(net(torch.flip(before, [3]), torch.flip(after, [3]))), [3])) * 0.5
    return (p[:, :1], p[:, 1:2]) if interior else p[:, :1]


def heads_at_scales(net, before, after, interior, symmetric=False, flip=False, scales=(1.0,)):
    """`heads` on the scene resampled by each of `scales` (bilinear), each answer resampled back to the
    scene's size. The change probabilities are combined by their geometric mean: a pixel is change where
    every scale agrees, so a false alarm seen at one scale only fades (the arithmetic mean made 5 % more
    patches on the LEVIR validation images, README). The interior, whose regions seed the split of touching
    buildings, is the first scale's alone: averaged, its seeds split more buildings in two. Inference work is
    the sum of the squared scales. At the one scale 1, it is `heads`."""
    if tuple(scales) == (1.0,):
        return heads(net, before, after, interior, symmetric, flip)
    probs, inner = [], None
    size = before.shape[-2:]
    for s in scales:
        if s == 1:
            p, q = heads(net, before, after, True, symmetric, flip)
        else:
            b = F.interpolate(before, scale_factor=s, mode='bilinear', align_corners=False, recompute_scale_factor=False)
            a = F.interpolate(after, scale_factor=s, mode='bilinear', align_corners=False, recompute_scale_factor=False)
            p, q = (F.interpolate(t, size=size, mode='bilinear', align_corners=False) for t in heads(net, b, a, True, symmetric, flip))
        probs.append(p)
        inner = q if inner is None else inner
    p = torch.exp(sum(torch.log(p.clamp_min(1e-6)) for p in probs) / len(probs))
    return (p, inner) if interior else p


class Exported(nn.Module):
    """What goes into the ONNX file: probability in 0..1, inputs already normalised by the manifest."""

    def __init__(self, net, interior=False, symmetric=False):
        super().__init__()
        self.net = net
        self.interior = interior
        self.symmetric = symmetric

    def forward(self, before, after):
        return heads(self.net, before, after, self.interior, self.symmetric)


class Exported8(nn.Module):
    """The same for 8-bit samples: uint8 inputs 0..255, pixel-interleaved ([batch, height, width,
    band], as GeoTIFFs store them), transposed and normalised inside the graph, so the pipeline
    hands its samples over as read instead of separating bands and converting every pixel to floats."""

    def __init__(self, net, mean, std, interior=False, symmetric=False, flip=False, scales=(1.0,)):
        super().__init__()
        self.net = net
        self.interior = interior
        self.symmetric = symmetric
        self.flip = flip
        self.scales = tuple(scales)
        self.register_buffer('scale', torch.tensor([1 / (255 * s) for s in std]).view(1, 3, 1, 1))
        self.register_buffer('shift', torch.tensor([-m / s for m, s in zip(mean, std)]).view(1, 3, 1, 1))

    def forward(self, before, after):
        before, after = before.permute(0, 3, 1, 2), after.permute(0, 3, 1, 2)
        b = before.float() * self.scale + self.shift
        a = after.float() * self.scale + self.shift
        return heads_at_scales(self.net, b, a, self.interior, self.symmetric, self.flip, self.scales)


MEAN = [0.40, 0.40, 0.38]


STD = [0.20, 0.19, 0.19]


def normalise(x):
    m = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


def export_onnx(net, path, opset=13, uint8=False, interior=False, symmetric=False, flip=False, scales=(1.0,)):
    """uint8: pixel-interleaved 8-bit inputs [batch, height, width, 3]; else normalised floats [batch, 3, height, width].
    interior: a second output, `interior`, the building-interior probability. symmetric: average both date orders.
    flip: average the scene and its mirror image; scales: average the scene resampled by each (uint8 graph only)."""
    if (flip or tuple(scales) != (1.0,)) and not uint8:
        raise ValueError('--flip and --scales are exported for the uint8 graph only')
    model = (Exported8(net, MEAN, STD, interior, symmetric, flip, scales) if uint8 else Exported(net, interior, symmetric)).eval().cpu()
    x = torch.zeros(1, 64, 64, 3, dtype=torch.uint8) if uint8 else torch.zeros(1, 3, 64, 64)
    axes = {0: 'batch', 1: 'height', 2: 'width'} if uint8 else {0: 'batch', 2: 'height', 3: 'width'}
    out_axes = {0: 'batch', 2: 'height', 3: 'width'}
    names = ['probability', 'interior'] if interior else ['probability']
    kwargs = dict(input_names=['before', 'after'], output_names=names, opset_version=opset,
                  dynamic_axes={'before': axes, 'after': axes, **{n: out_axes for n in names}})
    try:
        torch.onnx.export(model, (x, x), path, dynamo=False, **kwargs)
    except TypeError:  # torch < 2.5 has no dynamo argument
        torch.onnx.export(model, (x, x), path, **kwargs)


def widths_of(state):
    """The encoder widths that a state dict (or weights.npz's arrays) was trained with."""
    return tuple(int(state[f'enc.{i}.0.0.weight'].shape[0]) for i in range(len(WIDTHS)))


def widen(state, widths, seed=0, noise=0.02):
    """The state of a wider net that computes nearly what `state` computes (Net2Net, Chen et al. 2016): each
    new channel copies an old one (its filter and BatchNorm), and every layer that reads a copied channel splits
    that channel's weight between the copies at random shares summing to one. The copies' filters get a little
    noise (`noise` times the filter's spread): exact copies would stay copies, since Adam's steps do not depend
    on the shares that scale their gradients, and the wider net would train as the narrow one. Fine-tuning a
    wider net from the committed weights then starts at their figures instead of from scratch."""
    old = widths_of(state)
    if len(widths) != len(old) or any(n < o for n, o in zip(widths, old)):
        raise ValueError(f'weights of widths {list(old)} can be widened, stage by stage, not made {list(widths)}')
    if any(k.startswith('refine.') for k in state):
        raise ValueError('weights with a refinement step cannot be widened')
    gen = np.random.default_rng(seed)
    last = len(widths) - 1

    def mapping(o, n):
        return torch.from_numpy(np.concatenate([np.arange(o), gen.integers(0, o, n - o)]))

    def shares(g):
        r = gen.uniform(0.5, 1.5, len(g))
        return torch.from_numpy(r / np.bincount(g.numpy(), weights=r)[g.numpy()]).float()

    enc = [(mapping(o, n), mapping(o, n)) for o, n in zip(old, widths)]
    fuse = [mapping(o, n) for o, n in zip(old, widths)]
    dec = [mapping(old[i], widths[i]) for i in reversed(range(last))]
    out = dict(state)

    def conv(prefix, inputs, g_out=None):
        """`inputs`: for each block of the input channels in order, its mapping (None: kept as they are)."""
        key = f'{prefix}.weight' if g_out is None else f'{prefix}.0.weight'
        w, parts, at = out[key], [], 0
        for g in inputs:
            n = 3 if g is None else int(g.max()) + 1
            block = w[:, at:at + n]
            parts.append(block if g is None else block[:, g] * shares(g).view(1, -1, 1, 1))
            at += n
        w = torch.cat(parts, 1)
        if g_out is not None:
            w = w[g_out]
            copies = w[int(g_out.max()) + 1:]  # the new channels (the first ones are the old, in order)
            spread = copies.flatten(1).std(1).view(-1, 1, 1, 1)
            copies += noise * spread * torch.from_numpy(gen.standard_normal(tuple(copies.shape))).float()
            for k in ('weight', 'bias', 'running_mean', 'running_var'):
                out[f'{prefix}.1.{k}'] = out[f'{prefix}.1.{k}'][g_out]
        out[key] = w

    for i, (g0, g1) in enumerate(enc):
        conv(f'enc.{i}.0', [None if i == 0 else enc[i - 1][1]], g0)
        conv(f'enc.{i}.1', [g0], g1)
        conv(f'fuse.{i}', [g1, g1, g1], fuse[i])
    for j, g in enumerate(dec):
        conv(f'dec.{j}', [fuse[last] if j == 0 else dec[j - 1], fuse[last - 1 - j]], g)
    conv('head', [dec[-1]])
    return out


def save_weights(net, path):
    np.savez(path, **{k: v.detach().cpu().numpy() for k, v in net.state_dict().items()})


def load_weights(net, path):
    """Weights from weights.npz; a one-channel head (models before the interior output) starts both
    channels from its change channel; a net with the refinement step loaded from weights without it keeps
    its starting refinement (which adds nothing); a net wider than the weights starts from them widened (`widen`)."""
    with np.load(path) as z:
        state = {k: torch.from_numpy(z[k]) for k in z.files}
    own = net.state_dict()
    for k in ('head.weight', 'head.bias'):
        if k in state and k in own and state[k].shape[0] == 1 and own[k].shape[0] == 2:
            state[k] = torch.cat([state[k], state[k]])
    if widths_of(state) != widths_of(own):
        state = widen(state, widths_of(own))
    if net.refine_channels and not any(k.startswith('refine.') for k in state):
        state.update({k: v for k, v in own.items() if k.startswith('refine.')})
    net.load_state_dict(state)


def refine_channels(path):
    """The refinement step's width in weights.npz (0: none)."""
    with np.load(path) as z:
        return int(z['refine.0.0.weight'].shape[0]) if 'refine.0.0.weight' in z.files else 0
