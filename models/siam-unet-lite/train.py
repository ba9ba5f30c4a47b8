"""
Training recipe for `siam-unet-lite`: a compact Siamese U-Net for building change in 0.5 m RGB imagery.

Run through `scripts/train-detector.sh` (it installs Debian's python3-torch when missing and uses
/usr/bin/python3). Everything below is deterministic for a given --seed on one device.

Data (see models/siam-unet-lite/README.md):
  --data DIR[@SCALE]        labelled pairs in the A/ B/ label/ layout (repeatable); SCALE resamples the
                            folder to 0.5 m (0.5 for 0.25 m imagery). Folders written by
                            `tuban training export` are accepted as they are.
  --backgrounds DIR         single images (or A/ and B/ of a pair folder) used as backgrounds for
                            synthetic change (repeatable).
  --dev DIR[@SCALE]         development sets, evaluated at the end and recorded in the manifest
                            (never trained on).
  --mix R,S,P               fraction of each batch drawn from real pairs, synthetic pastes of real
                            roofs, and procedural roofs.

Outputs in --out: weights.npz (for fine-tuning with --init), model.onnx (dynamic batch/height/width,
sigmoid probability), training.json (recipe, data, seed, per-step loss, metrics on --dev sets).
"""
import argparse
import copy
import json
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

IMAGE_EXT = ('.png', '.jpg', '.jpeg', '.tif', '.tiff')
WIDTHS = (16, 32, 64, 96)


# ----------------------------------------------------------------------------------------------
# Model


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin, cout, stride=1, k=3):
        super().__init__(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SiamUNetLite(nn.Module):
    """Shared encoder at 1/2..1/16, fusion of (a, b, |a−b|) at each scale, U-Net decoder to 1/2, bilinear to full."""

    def __init__(self, widths=WIDTHS):
        super().__init__()
        w = widths
        self.enc = nn.ModuleList()
        cin = 3
        for c in w:
            self.enc.append(nn.Sequential(ConvBNReLU(cin, c, stride=2), ConvBNReLU(c, c)))
            cin = c
        self.fuse = nn.ModuleList([ConvBNReLU(3 * c, c, k=1) for c in w])
        self.dec = nn.ModuleList([ConvBNReLU(w[i + 1] + w[i], w[i]) for i in reversed(range(len(w) - 1))])
        self.head = nn.Conv2d(w[0], 2, 1)  # channel 0: change; channel 1: building interior (change eroded by ERODE_PX)

    def features(self, x):
        out = []
        for stage in self.enc:
            x = stage(x)
            out.append(x)
        return out

    def decode(self, fa, fb, size):
        d = [f(torch.cat([a, b, torch.abs(a - b)], 1)) for f, a, b in zip(self.fuse, fa, fb)]
        x = d[-1]
        for i, block in zip(reversed(range(len(d) - 1)), self.dec):
            x = F.interpolate(x, size=d[i].shape[-2:], mode='bilinear', align_corners=False)
            x = block(torch.cat([x, d[i]], 1))
        x = self.head(x)
        return F.interpolate(x, size=size, mode='bilinear', align_corners=False)

    def forward(self, before, after):
        return self.decode(self.features(before), self.features(after), before.shape[-2:])

    def forward_symmetric(self, before, after):
        """Logits of both date orders, from one pass of the encoder per date (the label does not depend
        on the order, and training swapped dates at random): averaging them is test-time augmentation
        that costs the fusion and decoder again, not the encoder."""
        fa, fb = self.features(before), self.features(after)
        size = before.shape[-2:]
        return self.decode(fa, fb, size), self.decode(fb, fa, size)


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

    def __init__(self, net, mean, std, interior=False, symmetric=False, flip=False):
        super().__init__()
        self.net = net
        self.interior = interior
        self.symmetric = symmetric
        self.flip = flip
        self.register_buffer('scale', torch.tensor([1 / (255 * s) for s in std]).view(1, 3, 1, 1))
        self.register_buffer('shift', torch.tensor([-m / s for m, s in zip(mean, std)]).view(1, 3, 1, 1))

    def forward(self, before, after):
        before, after = before.permute(0, 3, 1, 2), after.permute(0, 3, 1, 2)
        b = before.float() * self.scale + self.shift
        a = after.float() * self.scale + self.shift
        return heads(self.net, b, a, self.interior, self.symmetric, self.flip)


MEAN = [0.40, 0.40, 0.38]
STD = [0.20, 0.19, 0.19]


def normalise(x):
    m = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


# ----------------------------------------------------------------------------------------------
# Data


def split_spec(spec):
    """DIR[@SCALE][=WEIGHT] → (DIR, SCALE, WEIGHT); WEIGHT is the folder's share of real samples
    (default: its number of pairs, so every pair is drawn equally often)."""
    weight = None
    if '=' in spec:
        spec, w = spec.rsplit('=', 1)
        weight = float(w)
    if '@' in spec:
        path, scale = spec.rsplit('@', 1)
        return path, float(scale), weight
    return spec, 1.0, weight


def load_split(path):
    """A split file: {"validation": {"FOLDER": ["image.png", ...]}}. Training folders of that name skip
    the listed images; development folders of that name keep only them."""
    if not path:
        return {}
    with open(path) as f:
        split = json.load(f)
    val = split.get('validation')
    if not isinstance(val, dict) or not all(isinstance(v, list) and v for v in val.values()):
        raise SystemExit(f'{path}: expected {{"validation": {{"FOLDER": ["image", ...]}}}}')
    return {k: set(v) for k, v in val.items()}


def read_rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert('RGB'), dtype=np.uint8)


def read_label(path):
    with Image.open(path) as im:
        return (np.asarray(im.convert('L'), dtype=np.uint8) > 127).astype(np.uint8)


def find_label(folder, name):
    stem = os.path.splitext(name)[0]
    for f in sorted(os.listdir(os.path.join(folder, 'label'))):
        if os.path.splitext(f)[0] == stem:
            return os.path.join(folder, 'label', f)
    raise SystemExit(f'{folder}: no label for {name}')


def to_tensor(rgb, scale):
    t = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
    if scale != 1.0:
        t = F.interpolate(t, scale_factor=scale, mode='area' if scale < 1 else 'bilinear', recompute_scale_factor=False)
    return t[0]


def label_tensor(lab, scale):
    t = torch.from_numpy(lab.copy()).float()[None, None]
    if scale != 1.0:
        t = F.interpolate(t, scale_factor=scale, mode='area' if scale < 1 else 'bilinear', recompute_scale_factor=False)
    return (t[0] > 0.5).float()


def load_pairs(spec, split=None, role='train'):
    """A labelled folder → list of (A, B, label) tensors at 0.5 m. With a split, a training folder
    leaves out its validation images and a development folder keeps only them."""
    folder, scale, _ = split_spec(spec)
    held = (split or {}).get(os.path.basename(os.path.normpath(folder)))
    for sub in ('A', 'B', 'label'):
        if not os.path.isdir(os.path.join(folder, sub)):
            raise SystemExit(f'{folder}: no {sub}/ folder (expected A/, B/ and label/)')
    pairs = []
    for name in sorted(os.listdir(os.path.join(folder, 'A'))):
        if not name.lower().endswith(IMAGE_EXT):
            continue
        if held is not None and ((name in held) if role == 'train' else (name not in held)):
            continue
        b_path = os.path.join(folder, 'B', name)
        if not os.path.exists(b_path):
            raise SystemExit(f'{folder}: A/{name} has no B/{name}')
        a, b, lab = read_rgb(os.path.join(folder, 'A', name)), read_rgb(b_path), read_label(find_label(folder, name))
        if a.shape != b.shape or a.shape[:2] != lab.shape:
            raise SystemExit(f'{folder}/{name}: A {a.shape}, B {b.shape}, label {lab.shape} differ')
        pairs.append((name, to_tensor(a, scale), to_tensor(b, scale), label_tensor(lab, scale)))
    if not pairs:
        raise SystemExit(f'{folder}: no images in A/' + (' after the split' if held is not None else ''))
    if held is not None and role != 'train' and len(pairs) != len(held):
        missing = sorted(held - {p[0] for p in pairs})
        raise SystemExit(f'{folder}: validation images not found: {", ".join(missing)}')
    return folder, scale, pairs


def load_backgrounds(folder):
    subs = [os.path.join(folder, s) for s in ('A', 'B') if os.path.isdir(os.path.join(folder, s))] or [folder]
    out = []
    for d in subs:
        for name in sorted(os.listdir(d)):
            if name.lower().endswith(IMAGE_EXT):
                out.append(to_tensor(read_rgb(os.path.join(d, name)), 1.0))
    return out


def roof_bank(pairs, size=96, min_px=30):
    """Real roofs: connected regions of the change labels, cut from the after image with their mask."""
    roofs = []
    for _, _, b, lab in pairs:
        m = lab[0].numpy().astype(np.uint8)
        for comp in components(m):
            ys, xs = comp
            if len(ys) < min_px:
                continue
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            h, w = y1 - y0, x1 - x0
            if max(h, w) > size:
                continue
            rgba = torch.zeros(4, size, size)
            oy, ox = (size - h) // 2, (size - w) // 2
            rgba[:3, oy:oy + h, ox:ox + w] = b[:, y0:y1, x0:x1]
            mask = torch.zeros(h, w)
            mask[torch.from_numpy(ys - y0), torch.from_numpy(xs - x0)] = 1
            rgba[3, oy:oy + h, ox:ox + w] = mask
            roofs.append(rgba)
    return torch.stack(roofs) if roofs else torch.zeros(0, 4, size, size)


def components(mask):
    """4-connected components of a 0/1 array (small images; plain flood fill)."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    out = []
    for y in range(h):
        for x in range(w):
            if mask[y, x] and not seen[y, x]:
                stack, ys, xs = [(y, x)], [], []
                seen[y, x] = True
                while stack:
                    cy, cx = stack.pop()
                    ys.append(cy)
                    xs.append(cx)
                    for ny, nx in ((cy - 1, cx), (cy + 1, cx), (cy, cx - 1), (cy, cx + 1)):
                        if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                            seen[ny, nx] = True
                            stack.append((ny, nx))
                out.append((np.array(ys), np.array(xs)))
    return out


# ----------------------------------------------------------------------------------------------
# Batches (all on the training device)


class Sampler:
    def __init__(self, pairs, backgrounds, roofs, crop, device, gen, weights=None):
        self.pairs = [(a.to(device), b.to(device), l.to(device)) for _, a, b, l in pairs]
        self.weights = weights  # per pair: chance of being drawn (folder weight / folder size)
        self.backgrounds = [bg.to(device) for bg in backgrounds]
        self.roofs = roofs.to(device)
        self.crop = crop
        self.device = device
        self.gen = gen  # python random.Random

    def rand(self, *shape, lo=0.0, hi=1.0):
        return torch.rand(*shape, device=self.device) * (hi - lo) + lo

    def pick(self):
        if self.weights is None:
            return self.pairs[self.gen.randrange(len(self.pairs))]
        return self.pairs[self.gen.choices(range(len(self.pairs)), weights=self.weights)[0]]

    # -- real pairs: random scale, crop with 0–3 px misregistration between dates
    def real(self, n, scale=(0.6, 1.3)):
        A, B, L = [], [], []
        c = self.crop
        for _ in range(n):
            a, b, lab = self.pick()
            s = self.gen.uniform(*scale)
            h, w = a.shape[-2:]
            # cut the source window first, then resample it: whole 1024² images are too slow to scale per sample
            src = min(h, w, max(c + 8, round((c + 8) / s)))
            y0, x0 = self.gen.randrange(0, h - src + 1), self.gen.randrange(0, w - src + 1)
            stack = torch.cat([a, b, lab])[:, y0:y0 + src, x0:x0 + src]
            size = max(c + 8, round(src * s))
            if size != src:
                stack = F.interpolate(stack[None], size=(size, size), mode='bilinear', align_corners=False)[0]
            a, b, lab = stack[:3], stack[3:6], (stack[6:] > 0.5).float()
            y = self.gen.randrange(4, size - c - 3)
            x = self.gen.randrange(4, size - c - 3)
            dy, dx = self.gen.randint(-3, 3), self.gen.randint(-3, 3)
            A.append(a[:, y:y + c, x:x + c])
            B.append(b[:, y + dy:y + dy + c, x + dx:x + dx + c])
            L.append(lab[:, y:y + c, x:x + c])
        return torch.stack(A), torch.stack(B), torch.stack(L)

    def same(self, n):
        """No-change pairs: one real image on both dates (with 0–3 px misregistration; the per-date colour jitter comes later), label 0."""
        A, B, L = [], [], []
        c = self.crop
        for _ in range(n):
            a, b, _ = self.pick()
            img = a if self.gen.random() < 0.5 else b
            h, w = img.shape[-2:]
            s = self.gen.uniform(0.6, 1.3)
            src = min(h, w, max(c + 8, round((c + 8) / s)))
            y0, x0 = self.gen.randrange(0, h - src + 1), self.gen.randrange(0, w - src + 1)
            img = img[:, y0:y0 + src, x0:x0 + src]
            size = max(c + 8, round(src * s))
            if size != src:
                img = F.interpolate(img[None], size=(size, size), mode='bilinear', align_corners=False)[0]
            y = self.gen.randrange(4, size - c - 3)
            x = self.gen.randrange(4, size - c - 3)
            dy, dx = self.gen.randint(-3, 3), self.gen.randint(-3, 3)
            A.append(img[:, y:y + c, x:x + c])
            B.append(img[:, y + dy:y + dy + c, x + dx:x + dx + c])
            L.append(torch.zeros(1, c, c, device=self.device))
        return torch.stack(A), torch.stack(B), torch.stack(L)

    def background(self, n):
        c = self.crop
        out = []
        for _ in range(n):
            bg = self.backgrounds[self.gen.randrange(len(self.backgrounds))]
            h, w = bg.shape[-2:]
            s = self.gen.uniform(max(c / h, c / w, 0.6), 1.3)
            if abs(s - 1) > 0.02:
                bg = F.interpolate(bg[None], scale_factor=s, mode='bilinear', align_corners=False, recompute_scale_factor=False)[0]
            y = self.gen.randrange(0, bg.shape[-2] - c + 1)
            x = self.gen.randrange(0, bg.shape[-1] - c + 1)
            out.append(bg[:, y:y + c, x:x + c])
        return torch.stack(out)

    def procedural_roofs(self, n, size=96):
        """Rectangles and L-shapes with flat or gabled shading, roof-like colours and texture."""
        yy, xx = torch.meshgrid(torch.arange(size, device=self.device), torch.arange(size, device=self.device), indexing='ij')
        yy, xx = yy.float() - size / 2, xx.float() - size / 2
        out = torch.zeros(n, 4, size, size, device=self.device)
        palette = torch.tensor([[0.78, 0.78, 0.80], [0.70, 0.34, 0.26], [0.33, 0.48, 0.70], [0.55, 0.55, 0.57], [0.85, 0.84, 0.80], [0.42, 0.40, 0.38], [0.62, 0.30, 0.22], [0.25, 0.40, 0.55]], device=self.device)
        for i in range(n):
            hh, ww = self.gen.uniform(5, 30), self.gen.uniform(5, 40)
            m = ((yy.abs() <= hh) & (xx.abs() <= ww)).float()
            if self.gen.random() < 0.3:  # L-shape: cut a corner
                m = m * (1 - ((yy > hh * self.gen.uniform(-0.2, 0.5)) & (xx > ww * self.gen.uniform(-0.2, 0.5))).float())
            col = palette[self.gen.randrange(len(palette))] * self.gen.uniform(0.8, 1.15) + torch.randn(3, device=self.device) * 0.04
            shade = torch.ones(size, size, device=self.device)
            if self.gen.random() < 0.5:  # gable: one half lit, one half shaded
                shade = torch.where((yy if hh < ww else xx) > 0, torch.full_like(shade, self.gen.uniform(0.7, 0.9)), shade)
            tex = 1 + 0.04 * torch.randn(size, size, device=self.device)
            out[i, :3] = (col.view(3, 1, 1) * shade * tex).clamp(0, 1)
            out[i, 3] = m
        return out

    def paste(self, img, roofs_rgba, k_max):
        """Paste up to k_max roofs per image at random place, angle and scale, with a cast shadow. Returns image, mask."""
        n, _, c, _ = img.shape
        k = k_max
        idx = torch.randint(len(roofs_rgba), (n * k,), device=self.device)
        src = roofs_rgba[idx]
        ang = self.rand(n * k, lo=-np.pi, hi=np.pi)
        scl = self.rand(n * k, lo=0.5, hi=1.2)
        size = src.shape[-1]
        # affine_grid maps output (canvas) coordinates in [-1, 1] to input (roof patch) coordinates
        tx = self.rand(n * k, lo=-0.9, hi=0.9)
        ty = self.rand(n * k, lo=-0.9, hi=0.9)
        ratio = c / size / scl
        cos, sin = torch.cos(ang) * ratio, torch.sin(ang) * ratio
        theta = torch.stack([torch.stack([cos, -sin, -(cos * tx - sin * ty)], 1), torch.stack([sin, cos, -(sin * tx + cos * ty)], 1)], 1)
        grid = F.affine_grid(theta, (n * k, 4, c, c), align_corners=False)
        warped = F.grid_sample(src, grid, mode='bilinear', padding_mode='zeros', align_corners=False).view(n, k, 4, c, c)
        use = (self.rand(n, k) < self.rand(n, 1, lo=0.3, hi=1.0)).float().view(n, k, 1, 1, 1)
        warped = warped * use
        out = img.clone()
        mask = torch.zeros(n, 1, c, c, device=self.device)
        sdx, sdy = self.gen.randint(-6, 6), self.gen.randint(-6, 6)
        dark = self.gen.uniform(0.35, 0.75)
        for j in range(k):
            rgb, a = warped[:, j, :3], warped[:, j, 3:4].clamp(0, 1)
            shadow = torch.roll(a, shifts=(sdy, sdx), dims=(2, 3)) * (1 - a)
            out = out * (1 - shadow * (1 - dark))
            tint = self.rand(n, 3, 1, 1, lo=0.85, hi=1.15)
            out = out * (1 - a) + (rgb * tint).clamp(0, 1) * a
            mask = torch.maximum(mask, (a > 0.5).float())
        return out, mask

    def vehicles(self, img):
        """Small bright or dark blobs (cars, debris): nuisance change that stays unlabelled."""
        n, _, c, _ = img.shape
        out = img.clone()
        for i in range(n):
            for _ in range(self.gen.randint(0, 6)):
                h, w = self.gen.randint(2, 4), self.gen.randint(4, 9)
                if self.gen.random() < 0.5:
                    h, w = w, h
                y, x = self.gen.randrange(0, c - h), self.gen.randrange(0, c - w)
                grey = self.gen.choice([self.gen.uniform(0.05, 0.25), self.gen.uniform(0.6, 0.95)])
                out[i, :, y:y + h, x:x + w] = (grey * self.rand(3, 1, 1, lo=0.85, hi=1.15)).clamp(0, 1)
        return out

    def synthetic(self, n, procedural):
        bg = self.background(n)
        roofs = self.procedural_roofs(64) if procedural or len(self.roofs) == 0 else self.roofs
        built, mask = self.paste(bg, roofs, k_max=8)
        removal = (self.rand(n, 1, 1, 1) < 0.15).float()  # a building that disappears (ground pasted over it)
        a = built * removal + bg * (1 - removal)
        b = bg * removal + built * (1 - removal)
        a, b = self.vehicles(a), self.vehicles(b)
        dy, dx = self.gen.randint(-3, 3), self.gen.randint(-3, 3)
        b = torch.roll(b, shifts=(dy, dx), dims=(2, 3))
        mask_b = torch.roll(mask, shifts=(dy, dx), dims=(2, 3))
        # the label follows the after image on addition and the before image on removal
        lab = mask_b * (1 - removal) + mask * removal
        # misregistration moves the label of an addition with B; keep the before grid as reference
        return a, b, lab

    def photometric(self, x):
        """Per-date colour, gamma, haze, noise and blur: illumination and season between months."""
        n = x.shape[0]
        gain = self.rand(n, 3, 1, 1, lo=0.8, hi=1.2) * self.rand(n, 1, 1, 1, lo=0.85, hi=1.15)
        bias = self.rand(n, 3, 1, 1, lo=-0.06, hi=0.06)
        gamma = self.rand(n, 1, 1, 1, lo=0.7, hi=1.4)
        x = (x.clamp(1e-4, 1) ** gamma) * gain + bias
        haze = self.rand(n, 1, 1, 1, lo=0.0, hi=0.3) * (self.rand(n, 1, 1, 1) < 0.3).float()
        x = x * (1 - haze) + haze * self.rand(n, 1, 1, 1, lo=0.6, hi=0.9)
        blur = (self.rand(n, 1, 1, 1) < 0.2).float()
        x = blur * F.avg_pool2d(x, 3, 1, 1, count_include_pad=False) + (1 - blur) * x
        x = x + torch.randn_like(x) * self.rand(n, 1, 1, 1, lo=0.0, hi=0.03)
        return x.clamp(0, 1)

    def regional(self, x, frac):
        """Land-cover nuisance on one date: in a soft-edged region of a fifth to two thirds of the crop,
        colour shifted and fine texture smoothed away (grass greening or drying, land cleared or
        sown, a road resurfaced). Shapes inside stay where they are, so the label does not change."""
        n, _, c, _ = x.shape
        pick = (self.rand(n, 1, 1, 1) < frac).float()
        if float(pick.sum()) == 0:
            return x
        yy, xx = torch.meshgrid(torch.linspace(-1, 1, c, device=self.device), torch.linspace(-1, 1, c, device=self.device), indexing='ij')
        m = torch.zeros(n, 1, c, c, device=self.device)
        for i in range(n):
            for _ in range(self.gen.randint(1, 3)):
                cy, cx = self.gen.uniform(-0.8, 0.8), self.gen.uniform(-0.8, 0.8)
                ry, rx, t = self.gen.uniform(0.3, 0.9), self.gen.uniform(0.3, 0.9), self.gen.uniform(0, np.pi)
                u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
                v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
                m[i, 0] = torch.maximum(m[i, 0], ((u / rx) ** 2 + (v / ry) ** 2 <= 1).float())
        m = F.avg_pool2d(m, 9, 1, 4, count_include_pad=False) * pick
        smooth = F.avg_pool2d(F.avg_pool2d(x, 7, 1, 3, count_include_pad=False), 7, 1, 3, count_include_pad=False)
        keep = self.rand(n, 1, 1, 1, lo=0.0, hi=0.7)
        shifted = (x * keep + smooth * (1 - keep)) * self.rand(n, 3, 1, 1, lo=0.75, hi=1.3) + self.rand(n, 3, 1, 1, lo=-0.08, hi=0.08)
        return (x * (1 - m) + shifted.clamp(0, 1) * m).clamp(0, 1)

    def geometric(self, a, b, lab):
        k = self.gen.randrange(4)
        a, b, lab = (torch.rot90(t, k, dims=(2, 3)) for t in (a, b, lab))
        if self.gen.random() < 0.5:
            a, b, lab = (torch.flip(t, dims=(3,)) for t in (a, b, lab))
        return a, b, lab

    def batch(self, n, mix, same=0.0, regional=0.0, scale=(0.6, 1.3)):
        n_same = int(round(n * same))
        counts = np.random.RandomState(self.gen.randrange(1 << 30)).multinomial(n - n_same, mix)
        parts = [self.same(n_same)] if n_same else []
        if counts[0]:
            parts.append(self.real(counts[0], scale))
        if counts[1]:
            parts.append(self.synthetic(counts[1], procedural=False))
        if counts[2]:
            parts.append(self.synthetic(counts[2], procedural=True))
        a, b, lab = (torch.cat(t) for t in zip(*parts))
        a, b, lab = self.geometric(a, b, lab)
        a, b = self.photometric(a), self.photometric(b)
        if regional > 0:
            a, b = self.regional(a, regional / 2), self.regional(b, regional / 2)
        swap = (self.rand(n, 1, 1, 1) < 0.5).float()  # which date is "before" does not matter for the label
        a, b = a * (1 - swap) + b * swap, b * (1 - swap) + a * swap
        return normalise(a), normalise(b), lab


# ----------------------------------------------------------------------------------------------
# Evaluation (pixel counts at threshold; object metrics come from `tuban eval`)


@torch.no_grad()
def evaluate(net, sets, device, threshold=0.5):
    net.eval()
    out = {}
    for folder, scale, pairs in sets:
        tp = fp = fn = 0
        for _, a, b, lab in pairs:
            p = torch.sigmoid(net(normalise(a[None].to(device)), normalise(b[None].to(device)))[:, :1])[0].cpu() >= threshold
            t = lab.bool()
            tp += int((p & t).sum())
            fp += int((p & ~t).sum())
            fn += int((~p & t).sum())
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[os.path.basename(os.path.normpath(folder))] = {'precision': round(prec, 4), 'recall': round(rec, 4), 'f1': round(f1, 4), 'iou': round(tp / (tp + fp + fn), 4) if tp + fp + fn else 0.0, 'scale': scale}
    net.train()
    return out


def dice_loss(logits, target):
    p = torch.sigmoid(logits)
    inter = (p * target).sum((1, 2, 3))
    return (1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)).mean()


ERODE_PX = 3


def interior_target(lab):
    """Building interiors: the change label eroded by ERODE_PX, so buildings that touch or nearly touch
    come apart; vectorize uses them as seeds to split a merged region."""
    k = 2 * ERODE_PX + 1
    return 1 - F.max_pool2d(1 - lab, k, 1, ERODE_PX)


def export_onnx(net, path, opset=13, uint8=False, interior=False, symmetric=False, flip=False):
    """uint8: pixel-interleaved 8-bit inputs [batch, height, width, 3]; else normalised floats [batch, 3, height, width].
    interior: a second output, `interior`, the building-interior probability. symmetric: average both date orders.
    flip: average the scene and its mirror image (uint8 graph only)."""
    if flip and not uint8:
        raise ValueError('--flip is exported for the uint8 graph only')
    model = (Exported8(net, MEAN, STD, interior, symmetric, flip) if uint8 else Exported(net, interior, symmetric)).eval().cpu()
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


def save_weights(net, path):
    np.savez(path, **{k: v.detach().cpu().numpy() for k, v in net.state_dict().items()})


def load_weights(net, path):
    """Weights from weights.npz; a one-channel head (models before the interior output) starts both
    channels from its change channel."""
    with np.load(path) as z:
        state = {k: torch.from_numpy(z[k]) for k in z.files}
    own = net.state_dict()
    for k in ('head.weight', 'head.bias'):
        if k in state and k in own and state[k].shape[0] == 1 and own[k].shape[0] == 2:
            state[k] = torch.cat([state[k], state[k]])
    net.load_state_dict(state)


def save_checkpoint(path, net, opt, step, elapsed, gen, ema=None):
    """Everything a run needs to go on where it stopped (--resume), written atomically."""
    tmp = path + '.tmp'
    torch.save({'net': net.state_dict(), 'opt': opt.state_dict(), 'step': step, 'elapsed': elapsed,
                'ema': ema.state_dict() if ema is not None else None,
                'python_rng': gen.getstate(), 'torch_rng': torch.get_rng_state(), 'numpy_rng': np.random.get_state()}, tmp)
    os.replace(tmp, path)


@torch.no_grad()
def update_ema(ema, net, decay):
    """ema ← decay·ema + (1 − decay)·net, over weights and BatchNorm statistics alike; integer buffers
    (the batch counters) are copied."""
    for e, v in zip(ema.state_dict().values(), net.state_dict().values()):
        if e.dtype.is_floating_point:
            e.mul_(decay).add_(v.detach(), alpha=1 - decay)
        else:
            e.copy_(v)


def learning_rate(base, progress, warmup=0.03, floor=0.01):
    """Linear warm-up, then cosine down to floor × base; progress runs 0..1."""
    if progress < warmup:
        return base * (0.04 + 0.96 * progress / warmup)
    t = min(1.0, (progress - warmup) / (1 - warmup))
    return base * (floor + (1 - floor) * 0.5 * (1 + np.cos(np.pi * t)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', action='append', default=[], help='labelled pairs DIR[@SCALE][=WEIGHT] (repeatable)')
    ap.add_argument('--backgrounds', action='append', default=[], help='background images for synthetic change (repeatable)')
    ap.add_argument('--dev', action='append', default=[], help='development sets DIR[@SCALE] (repeatable)')
    ap.add_argument('--split', help='JSON naming the validation images of a folder: never trained on, the only ones evaluated')
    ap.add_argument('--mix', default='1,0,0', help='fractions real,synthetic,procedural (1,0,0 won on the development sets; see README)')
    ap.add_argument('--same', type=float, default=0.0, help='fraction of each batch that is a no-change pair (one image on both dates)')
    ap.add_argument('--regional', type=float, default=0.0, help='fraction of samples with a land-cover nuisance (regional colour shift and smoothing) on one date, unlabelled')
    ap.add_argument('--scale', default='0.6,1.3', help='range of random rescaling of real pairs')
    ap.add_argument('--interior-weight', type=float, default=0.5, help='weight of the building-interior loss (second output)')
    ap.add_argument('--steps', type=int, default=6000)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--crop', type=int, default=128)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--seed', type=int, default=20241)
    ap.add_argument('--device', default='auto')
    ap.add_argument('--threads', type=int, default=0, help='CPU threads (0: every core)')
    ap.add_argument('--init', help='weights.npz to start from (fine-tuning)')
    ap.add_argument('--max-minutes', type=float, default=0, help='end after this much training time even before --steps; the learning rate follows whichever of steps or time is further along (0: steps only)')
    ap.add_argument('--checkpoint-minutes', type=float, default=5, help='write checkpoint.pt, weights.npz and training.json this often')
    ap.add_argument('--eval-every', type=int, default=500, help='evaluate the development sets every N steps (0: only at the end)')
    ap.add_argument('--ema', type=float, default=0.0, help='keep an exponential moving average of the weights with this decay '
                    '(e.g. 0.999); evaluations and weights.npz then use the average (0: off)')
    ap.add_argument('--snapshots', action='store_true', help='also keep the weights of every evaluation as snapshots/step-N.npz')
    ap.add_argument('--resume', action='store_true', help='go on from --out/checkpoint.pt with the same arguments')
    ap.add_argument('--widths', default=','.join(map(str, WIDTHS)), help='encoder widths at 1/2, 1/4, 1/8, 1/16')
    ap.add_argument('--out', required=True)
    args = ap.parse_args(argv)

    device = torch.device('cuda' if args.device == 'auto' and torch.cuda.is_available() else ('cpu' if args.device == 'auto' else args.device))
    torch.set_num_threads(args.threads or os.cpu_count() or 1)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    gen = random.Random(args.seed)
    mix = [float(v) for v in args.mix.split(',')]
    if len(mix) != 3 or min(mix) < 0 or sum(mix) <= 0:
        raise SystemExit(f'--mix {args.mix}: expected three non-negative fractions real,synthetic,procedural')
    mix = [v / sum(mix) for v in mix]
    scale = tuple(float(v) for v in args.scale.split(','))
    if len(scale) != 2 or not 0 < scale[0] <= scale[1]:
        raise SystemExit(f'--scale {args.scale}: expected LOW,HIGH with 0 < LOW <= HIGH')
    if (mix[0] > 0 or args.same > 0) and not args.data:
        raise SystemExit('--mix asks for real pairs but no --data folder was given')
    if (mix[1] > 0 or mix[2] > 0) and not args.backgrounds:
        raise SystemExit('--mix asks for synthetic change but no --backgrounds folder was given')
    ckpt_path = os.path.join(args.out, 'checkpoint.pt')
    if args.resume and not os.path.exists(ckpt_path):
        raise SystemExit(f'--resume: {ckpt_path} not found')

    split = load_split(args.split)
    train_sets = [load_pairs(s, split, 'train') for s in args.data]
    dev_sets = [load_pairs(s, split, 'dev') for s in args.dev]
    pairs = [p for _, _, ps in train_sets for p in ps]
    weights = None
    folder_weights = [split_spec(s)[2] for s in args.data]
    if any(w is not None for w in folder_weights):
        folder_weights = [len(ps) if w is None else w for w, (_, _, ps) in zip(folder_weights, train_sets)]
        weights = [w / len(ps) for w, (_, _, ps) in zip(folder_weights, train_sets) for _ in ps]
    backgrounds = [bg for f in args.backgrounds for bg in load_backgrounds(f)]
    roofs = roof_bank(pairs) if mix[1] > 0 else torch.zeros(0, 4, 96, 96)
    print(f'data: {len(pairs)} labelled pairs from {len(train_sets)} folders, {len(backgrounds)} backgrounds, {len(roofs)} real roofs; '
          f'dev {", ".join(f"{os.path.basename(os.path.normpath(f))} ({len(ps)})" for f, _, ps in dev_sets)}; device {device}, {torch.get_num_threads()} threads', flush=True)
    if mix[1] > 0 and len(roofs) == 0:
        print('warning: no real roofs found in the labelled data; synthetic change uses procedural roofs only', flush=True)

    widths = tuple(int(v) for v in args.widths.split(','))
    if len(widths) != 4:
        raise SystemExit(f'--widths {args.widths}: expected four numbers')
    net = SiamUNetLite(widths).to(device)
    if args.init:
        load_weights(net, args.init)
    params = sum(p.numel() for p in net.parameters())
    if not 0 <= args.ema < 1:
        raise SystemExit(f'--ema {args.ema}: expected a decay in [0, 1)')
    ema = copy.deepcopy(net).eval() if args.ema else None
    sampler = Sampler(pairs, backgrounds, roofs, args.crop, device, gen, weights)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    bce = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(2.0, device=device))
    log, evals = [], []
    step, elapsed_before = 0, 0.0
    if args.resume:
        ck = torch.load(ckpt_path, map_location=device)
        net.load_state_dict(ck['net'])
        opt.load_state_dict(ck['opt'])
        if ema is not None:
            if ck.get('ema') is None:
                raise SystemExit(f'--resume --ema: {ckpt_path} was written without --ema')
            ema.load_state_dict(ck['ema'])
        step, elapsed_before = ck['step'], ck['elapsed']
        gen.setstate(ck['python_rng'])
        torch.set_rng_state(ck['torch_rng'])
        np.random.set_state(ck['numpy_rng'])
        with open(os.path.join(args.out, 'training.json')) as f:
            prev = json.load(f)
        log, evals = prev.get('log', []), prev.get('evals', [])
        print(f'resumed at step {step} after {elapsed_before:.0f}s of training', flush=True)
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    last_ckpt = t0
    budget = args.max_minutes * 60

    def progress():
        p = step / args.steps
        if budget:
            p = max(p, (elapsed_before + time.time() - t0) / budget)
        return p

    def record(final, metrics=None, train_metrics=None):
        return {
            'recipe': 'models/siam-unet-lite/train.py',
            'architecture': {'name': 'SiamUNetLite', 'widths': list(widths), 'parameters': params, 'outputs': ['probability', 'interior'], 'interiorErodePx': ERODE_PX},
            'normalisation': {'mean': MEAN, 'std': STD},
            'seed': args.seed, 'steps': step, 'stepsPlanned': args.steps, 'maxMinutes': args.max_minutes, 'finished': final,
            'batch': args.batch, 'crop': args.crop, 'lr': args.lr, 'scale': list(scale), 'interiorWeight': args.interior_weight, 'ema': args.ema,
            'mix': dict(zip(['real', 'synthetic', 'procedural'], [round(v, 3) for v in mix])), 'same': args.same, 'regional': args.regional,
            'device': str(device) if device.type == 'cpu' else torch.cuda.get_device_name(device),
            'threads': torch.get_num_threads(), 'torch': torch.__version__,
            'trainingSeconds': round(elapsed_before + time.time() - t0, 1),
            'trainingData': [{'folder': os.path.basename(os.path.normpath(f)), 'scale': s, 'pairs': len(ps),
                              **({'weight': w} if weights else {})} for (f, s, ps), w in zip(train_sets, folder_weights)],
            'split': {k: sorted(v) for k, v in split.items()}, 'splitFile': args.split,
            'backgrounds': [os.path.basename(os.path.normpath(f)) for f in args.backgrounds], 'backgroundImages': len(backgrounds), 'realRoofs': len(roofs),
            'initialisedFrom': args.init, 'resumed': args.resume,
            'devMetrics': metrics if metrics is not None else (evals[-1]['dev'] if evals else {}),
            'trainMetrics': train_metrics or {}, 'evals': evals, 'log': log,
        }

    def write(final, metrics=None, train_metrics=None):
        net.eval()
        save_weights(ema or net, os.path.join(args.out, 'weights.npz'))
        net.train()
        with open(os.path.join(args.out, 'training.json.tmp'), 'w') as f:
            json.dump(record(final, metrics, train_metrics), f, indent=2)
        os.replace(os.path.join(args.out, 'training.json.tmp'), os.path.join(args.out, 'training.json'))
        save_checkpoint(ckpt_path, net, opt, step, elapsed_before + time.time() - t0, gen, ema)

    net.train()
    while step < args.steps and progress() < 1:
        lr = learning_rate(args.lr, progress())
        for g in opt.param_groups:
            g['lr'] = lr
        step += 1
        a, b, lab = sampler.batch(args.batch, mix, args.same, args.regional, scale)
        logits = net(a, b)
        inner = interior_target(lab)
        loss = bce(logits[:, :1], lab) + dice_loss(logits[:, :1], lab)
        if args.interior_weight:
            loss = loss + args.interior_weight * (bce(logits[:, 1:2], inner) + dice_loss(logits[:, 1:2], inner))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            update_ema(ema, net, min(args.ema, (1 + step) / (10 + step)))
        if step % 100 == 0:
            elapsed = elapsed_before + time.time() - t0
            log.append({'step': step, 'loss': round(float(loss), 4), 'lr': round(lr, 6), 'seconds': round(elapsed, 1)})
            print(f'step {step} loss {float(loss):.4f} lr {lr:.5f} {elapsed:.0f}s ({progress():.1%})', flush=True)
        if args.eval_every and step % args.eval_every == 0 and dev_sets:
            m = evaluate(ema or net, dev_sets, device)
            if args.snapshots:
                os.makedirs(os.path.join(args.out, 'snapshots'), exist_ok=True)
                save_weights(ema or net, os.path.join(args.out, 'snapshots', f'step-{step}.npz'))
            evals.append({'step': step, 'seconds': round(elapsed_before + time.time() - t0, 1), 'dev': m})
            print(f'eval {step}: ' + ', '.join(f'{k} F1 {v["f1"]:.3f}' for k, v in m.items()), flush=True)
        if time.time() - last_ckpt > args.checkpoint_minutes * 60:
            write(False)
            last_ckpt = time.time()
    seconds = elapsed_before + time.time() - t0
    final_net = ema or net
    metrics = evaluate(final_net, dev_sets, device)
    train_metrics = evaluate(final_net, train_sets, device)
    print('dev:', json.dumps(metrics), flush=True)
    write(True, metrics, train_metrics)
    try:
        export_onnx(final_net.cpu().eval(), os.path.join(args.out, 'model.onnx'))
    except Exception as err:  # the weights are saved; the ONNX file can be made again with export.py
        print(f'ONNX export failed: {err}', file=sys.stderr, flush=True)
    print(f'wrote {args.out}: {params} parameters, {step} steps in {seconds:.0f}s', flush=True)


if __name__ == '__main__':
    main()
