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
        self.head = nn.Conv2d(w[0], 1, 1)

    def features(self, x):
        out = []
        for stage in self.enc:
            x = stage(x)
            out.append(x)
        return out

    def forward(self, before, after):
        fa = self.features(before)
        fb = self.features(after)
        d = [f(torch.cat([a, b, torch.abs(a - b)], 1)) for f, a, b in zip(self.fuse, fa, fb)]
        x = d[-1]
        for i, block in zip(reversed(range(len(d) - 1)), self.dec):
            x = F.interpolate(x, size=d[i].shape[-2:], mode='bilinear', align_corners=False)
            x = block(torch.cat([x, d[i]], 1))
        x = self.head(x)
        return F.interpolate(x, size=before.shape[-2:], mode='bilinear', align_corners=False)


class Exported(nn.Module):
    """What goes into the ONNX file: probability in 0..1, inputs already normalised by the manifest."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, before, after):
        return torch.sigmoid(self.net(before, after))


class Exported8(nn.Module):
    """The same for 8-bit samples: uint8 inputs 0..255, pixel-interleaved ([batch, height, width,
    band], as GeoTIFFs store them), transposed and normalised inside the graph, so the pipeline
    hands its samples over as read instead of separating bands and converting every pixel to floats."""

    def __init__(self, net, mean, std):
        super().__init__()
        self.net = net
        self.register_buffer('scale', torch.tensor([1 / (255 * s) for s in std]).view(1, 3, 1, 1))
        self.register_buffer('shift', torch.tensor([-m / s for m, s in zip(mean, std)]).view(1, 3, 1, 1))

    def forward(self, before, after):
        before, after = before.permute(0, 3, 1, 2), after.permute(0, 3, 1, 2)
        b = before.float() * self.scale + self.shift
        a = after.float() * self.scale + self.shift
        return torch.sigmoid(self.net(b, a))


MEAN = [0.40, 0.40, 0.38]
STD = [0.20, 0.19, 0.19]


def normalise(x):
    m = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - m) / s


# ----------------------------------------------------------------------------------------------
# Data


def split_spec(spec):
    if '@' in spec:
        path, scale = spec.rsplit('@', 1)
        return path, float(scale)
    return spec, 1.0


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


def load_pairs(spec):
    """A labelled folder → list of (A, B, label) tensors at 0.5 m."""
    folder, scale = split_spec(spec)
    for sub in ('A', 'B', 'label'):
        if not os.path.isdir(os.path.join(folder, sub)):
            raise SystemExit(f'{folder}: no {sub}/ folder (expected A/, B/ and label/)')
    pairs = []
    for name in sorted(os.listdir(os.path.join(folder, 'A'))):
        if not name.lower().endswith(IMAGE_EXT):
            continue
        b_path = os.path.join(folder, 'B', name)
        if not os.path.exists(b_path):
            raise SystemExit(f'{folder}: A/{name} has no B/{name}')
        a, b, lab = read_rgb(os.path.join(folder, 'A', name)), read_rgb(b_path), read_label(find_label(folder, name))
        if a.shape != b.shape or a.shape[:2] != lab.shape:
            raise SystemExit(f'{folder}/{name}: A {a.shape}, B {b.shape}, label {lab.shape} differ')
        pairs.append((name, to_tensor(a, scale), to_tensor(b, scale), label_tensor(lab, scale)))
    if not pairs:
        raise SystemExit(f'{folder}: no images in A/')
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
    def __init__(self, pairs, backgrounds, roofs, crop, device, gen):
        self.pairs = [(a.to(device), b.to(device), l.to(device)) for _, a, b, l in pairs]
        self.backgrounds = [bg.to(device) for bg in backgrounds]
        self.roofs = roofs.to(device)
        self.crop = crop
        self.device = device
        self.gen = gen  # python random.Random

    def rand(self, *shape, lo=0.0, hi=1.0):
        return torch.rand(*shape, device=self.device) * (hi - lo) + lo

    # -- real pairs: random scale, crop with 0–3 px misregistration between dates
    def real(self, n):
        A, B, L = [], [], []
        c = self.crop
        for _ in range(n):
            a, b, lab = self.pairs[self.gen.randrange(len(self.pairs))]
            s = self.gen.uniform(0.6, 1.3)
            h, w = a.shape[-2:]
            size = (max(c + 8, round(h * s)), max(c + 8, round(w * s)))
            stack = F.interpolate(torch.cat([a, b, lab])[None], size=size, mode='bilinear', align_corners=False)[0]
            a, b, lab = stack[:3], stack[3:6], (stack[6:] > 0.5).float()
            y = self.gen.randrange(4, size[0] - c - 3)
            x = self.gen.randrange(4, size[1] - c - 3)
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
            a, b, _ = self.pairs[self.gen.randrange(len(self.pairs))]
            img = a if self.gen.random() < 0.5 else b
            h, w = img.shape[-2:]
            s = self.gen.uniform(0.6, 1.3)
            size = (max(c + 8, round(h * s)), max(c + 8, round(w * s)))
            img = F.interpolate(img[None], size=size, mode='bilinear', align_corners=False)[0]
            y = self.gen.randrange(4, size[0] - c - 3)
            x = self.gen.randrange(4, size[1] - c - 3)
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

    def batch(self, n, mix, same=0.0, regional=0.0):
        n_same = int(round(n * same))
        counts = np.random.RandomState(self.gen.randrange(1 << 30)).multinomial(n - n_same, mix)
        parts = [self.same(n_same)] if n_same else []
        if counts[0]:
            parts.append(self.real(counts[0]))
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
            p = torch.sigmoid(net(normalise(a[None].to(device)), normalise(b[None].to(device))))[0].cpu() >= threshold
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


def export_onnx(net, path, opset=13, uint8=False):
    """uint8: pixel-interleaved 8-bit inputs [batch, height, width, 3]; else normalised floats [batch, 3, height, width]."""
    model = (Exported8(net, MEAN, STD) if uint8 else Exported(net)).eval().cpu()
    x = torch.zeros(1, 64, 64, 3, dtype=torch.uint8) if uint8 else torch.zeros(1, 3, 64, 64)
    axes = {0: 'batch', 1: 'height', 2: 'width'} if uint8 else {0: 'batch', 2: 'height', 3: 'width'}
    kwargs = dict(input_names=['before', 'after'], output_names=['probability'], opset_version=opset,
                  dynamic_axes={'before': axes, 'after': axes, 'probability': {0: 'batch', 2: 'height', 3: 'width'}})
    try:
        torch.onnx.export(model, (x, x), path, dynamo=False, **kwargs)
    except TypeError:  # torch < 2.5 has no dynamo argument
        torch.onnx.export(model, (x, x), path, **kwargs)


def save_weights(net, path):
    np.savez(path, **{k: v.detach().cpu().numpy() for k, v in net.state_dict().items()})


def load_weights(net, path):
    with np.load(path) as z:
        state = {k: torch.from_numpy(z[k]) for k in z.files}
    net.load_state_dict(state)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--data', action='append', default=[], help='labelled pairs DIR[@SCALE] (repeatable)')
    ap.add_argument('--backgrounds', action='append', default=[], help='background images for synthetic change (repeatable)')
    ap.add_argument('--dev', action='append', default=[], help='development sets DIR[@SCALE] (repeatable)')
    ap.add_argument('--mix', default='1,0,0', help='fractions real,synthetic,procedural (1,0,0 won on the development sets; see README)')
    ap.add_argument('--same', type=float, default=0.0, help='fraction of each batch that is a no-change pair (one image on both dates)')
    ap.add_argument('--regional', type=float, default=0.0, help='fraction of samples with a land-cover nuisance (regional colour shift and smoothing) on one date, unlabelled')
    ap.add_argument('--steps', type=int, default=6000)
    ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--crop', type=int, default=128)
    ap.add_argument('--lr', type=float, default=3e-3)
    ap.add_argument('--seed', type=int, default=20241)
    ap.add_argument('--device', default='auto')
    ap.add_argument('--threads', type=int, default=0)
    ap.add_argument('--init', help='weights.npz to start from (fine-tuning)')
    ap.add_argument('--max-minutes', type=float, default=0, help='fit the step count to this wall time, measured on the first 40 steps (0: no limit)')
    ap.add_argument('--widths', default=','.join(map(str, WIDTHS)), help='encoder widths at 1/2, 1/4, 1/8, 1/16')
    ap.add_argument('--out', required=True)
    args = ap.parse_args(argv)

    device = torch.device('cuda' if args.device == 'auto' and torch.cuda.is_available() else ('cpu' if args.device == 'auto' else args.device))
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    gen = random.Random(args.seed)
    mix = [float(v) for v in args.mix.split(',')]
    if len(mix) != 3 or min(mix) < 0 or sum(mix) <= 0:
        raise SystemExit(f'--mix {args.mix}: expected three non-negative fractions real,synthetic,procedural')
    mix = [v / sum(mix) for v in mix]
    if (mix[0] > 0 or args.same > 0) and not args.data:
        raise SystemExit('--mix asks for real pairs but no --data folder was given')
    if (mix[1] > 0 or mix[2] > 0) and not args.backgrounds:
        raise SystemExit('--mix asks for synthetic change but no --backgrounds folder was given')

    train_sets = [load_pairs(s) for s in args.data]
    dev_sets = [load_pairs(s) for s in args.dev]
    pairs = [p for _, _, ps in train_sets for p in ps]
    backgrounds = [bg for f in args.backgrounds for bg in load_backgrounds(f)]
    roofs = roof_bank(pairs)
    print(f'data: {len(pairs)} labelled pairs from {len(train_sets)} folders, {len(backgrounds)} backgrounds, {len(roofs)} real roofs; device {device}', flush=True)
    if mix[1] > 0 and len(roofs) == 0:
        print('warning: no real roofs found in the labelled data; synthetic change uses procedural roofs only', flush=True)

    widths = tuple(int(v) for v in args.widths.split(','))
    if len(widths) != 4:
        raise SystemExit(f'--widths {args.widths}: expected four numbers')
    net = SiamUNetLite(widths).to(device)
    if args.init:
        load_weights(net, args.init)
    params = sum(p.numel() for p in net.parameters())
    sampler = Sampler(pairs, backgrounds, roofs, args.crop, device, gen)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    bce = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(2.0, device=device))
    log = []
    t0 = time.time()
    calibration = 40 if args.max_minutes else 0
    total = args.steps
    sched = None
    step = 0
    for step in range(1, args.steps + 1):
        if step == calibration + 1:
            if calibration:  # fit the schedule to the time allowed, so it ends with a low learning rate
                rate = calibration / (time.time() - t0)
                total = max(calibration + 100, min(args.steps, int(rate * args.max_minutes * 60 * 0.95)))
                print(f'calibration: {rate:.1f} steps/s, planning {total} steps', flush=True)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total - calibration, pct_start=0.1)
        elif step <= calibration:
            for g in opt.param_groups:
                g['lr'] = args.lr * 0.04
        if step > total:
            step -= 1
            break
        a, b, lab = sampler.batch(args.batch, mix, args.same, args.regional)
        logits = net(a, b)
        loss = bce(logits, lab) + dice_loss(logits, lab)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sched:
            sched.step()
        if step % 100 == 0 or step == total:
            elapsed = time.time() - t0
            log.append({'step': step, 'loss': round(float(loss), 4), 'seconds': round(elapsed, 1)})
            print(f'step {step}/{total} loss {float(loss):.4f} {elapsed:.0f}s', flush=True)
    seconds = time.time() - t0
    metrics = evaluate(net, dev_sets, device)
    train_metrics = evaluate(net, train_sets, device)
    print('dev:', json.dumps(metrics), flush=True)

    os.makedirs(args.out, exist_ok=True)
    net_cpu = net.cpu().eval()
    save_weights(net_cpu, os.path.join(args.out, 'weights.npz'))
    try:
        export_onnx(net_cpu, os.path.join(args.out, 'model.onnx'))
    except Exception as err:  # the weights are saved; the ONNX file can be made again with export.py
        print(f'ONNX export failed: {err}', file=sys.stderr, flush=True)
    record = {
        'recipe': 'models/siam-unet-lite/train.py',
        'architecture': {'name': 'SiamUNetLite', 'widths': list(widths), 'parameters': params},
        'normalisation': {'mean': MEAN, 'std': STD},
        'seed': args.seed, 'steps': step, 'stepsPlanned': total, 'batch': args.batch, 'crop': args.crop, 'lr': args.lr,
        'mix': dict(zip(['real', 'synthetic', 'procedural'], [round(v, 3) for v in mix])), 'same': args.same, 'regional': args.regional,
        'device': str(device) if device.type == 'cpu' else torch.cuda.get_device_name(device),
        'torch': torch.__version__, 'trainingSeconds': round(seconds, 1),
        'trainingData': [{'folder': os.path.basename(os.path.normpath(f)), 'scale': s, 'pairs': len(ps)} for f, s, ps in train_sets],
        'backgrounds': [os.path.basename(os.path.normpath(f)) for f in args.backgrounds], 'backgroundImages': len(backgrounds), 'realRoofs': len(roofs),
        'initialisedFrom': args.init,
        'devMetrics': metrics, 'trainMetrics': train_metrics, 'log': log,
    }
    with open(os.path.join(args.out, 'training.json'), 'w') as f:
        json.dump(record, f, indent=2)
    print(f'wrote {args.out}: {params} parameters, {step} steps in {seconds:.0f}s', flush=True)


if __name__ == '__main__':
    main()
