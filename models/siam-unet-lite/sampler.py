"""Training batches for siam-unet-lite: crops of real pairs, synthetic pastes of real roofs and
procedural roofs, with the augmentations (colour, misregistration, scale, season, no-change)."""

import numpy as np
import torch
import torch.nn.functional as F

from net import normalise


# ----------------------------------------------------------------------------------------------
# Batches (all on the training device)


def with_known(lab):
    """A label with its second channel, where the label is known (1) or not (0): labels without one
    (every folder but `tuban training export`'s, and the synthetic samples) are known everywhere."""
    if lab.shape[-3] == 2:
        return lab
    return torch.cat([lab, torch.ones_like(lab)], dim=-3)


def component_ids(lab):
    """8-connected regions of a [1, H, W] 0/1 label as an [H, W] map of region ids (0 outside): every
    pixel takes the largest id around it until nothing changes (whole tensors at a time)."""
    mask = lab[0]
    ids = torch.arange(1, mask.numel() + 1, dtype=torch.float32, device=mask.device).view(mask.shape) * mask
    while True:
        grown = F.max_pool2d(ids[None, None], 3, 1, 1)[0, 0] * mask
        if torch.equal(grown, ids):
            return ids.long()
        ids = grown


class Sampler:
    def __init__(self, pairs, backgrounds, roofs, crop, device, gen, weights=None, isolated=False):
        self.pairs = [(a.to(device), b.to(device), l.to(device)) for _, a, b, l in pairs]
        # the buildings of each pair, for in-context change (isolated)
        self.ids = [component_ids(l) for _, _, l in self.pairs] if isolated else None
        self.built = [torch.nonzero(i > 0) for i in self.ids] if isolated else None
        self.weights = weights  # per pair: chance of being drawn (folder weight / folder size)
        self.backgrounds = [bg.to(device) for bg in backgrounds]
        self.roofs = roofs.to(device)
        self.crop = crop
        self.device = device
        self.gen = gen  # python random.Random

    def rand(self, *shape, lo=0.0, hi=1.0):
        return torch.rand(*shape, device=self.device) * (hi - lo) + lo

    def pick(self):
        return self.pairs[self.pick_index()]

    # -- real pairs: random scale, crop with 0–3 px misregistration between dates (the label on the after image's grid)
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
            # the label follows the after image, where the new building stands (as in `synthetic`): cut on
            # the before image's grid, it lay up to 3 px off the roof it marks, and the masks learned were wide
            L.append(with_known(lab[:, y + dy:y + dy + c, x + dx:x + dx + c]))
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

    def isolated(self, n, scale=(0.6, 1.3)):
        """In-context change, as a city's monthly imagery has it: an after image's own neighbourhood on
        both dates, with one to three of its buildings changed on one date only — taken back to the
        before image's ground (a house built, or demolished once the dates are swapped), half of it taken
        back (an extension), or another building's roof pasted on a part of its roof (a storey or a shed on
        top) — and the other buildings standing on both dates (label 0 there)."""
        A, B, L = [], [], []
        c = self.crop
        for _ in range(n):
            k = self.pick_index()
            a, b, _ = self.pairs[k]
            ids = self.ids[k]
            s = self.gen.uniform(*scale)
            h, w = a.shape[-2:]
            src = min(h, w, max(c + 8, round((c + 8) / s)))
            # a window around one of the pair's new buildings (anywhere, if it has none)
            built = self.built[k]
            if len(built):
                cy, cx = (int(v) for v in built[self.gen.randrange(len(built))])
                y0 = min(max(0, cy - self.gen.randrange(src)), h - src)
                x0 = min(max(0, cx - self.gen.randrange(src)), w - src)
            else:
                y0, x0 = self.gen.randrange(0, h - src + 1), self.gen.randrange(0, w - src + 1)
            win = ids[y0:y0 + src, x0:x0 + src]
            before = b[:, y0:y0 + src, x0:x0 + src].clone()
            after = before.clone()
            lab = torch.zeros(1, src, src, device=self.device)
            present, counts = torch.unique(win[win > 0], return_counts=True)
            whole = [int(i) for i, n_px in zip(present.tolist(), counts.tolist()) if n_px >= 40]
            self.gen.shuffle(whole)
            ground = a[:, y0:y0 + src, x0:x0 + src]
            for j, bid in enumerate(whole[:self.gen.randint(1, 3)]):
                m = (win == bid).float()[None]
                ys, xs = torch.nonzero(m[0], as_tuple=True)
                by0, by1, bx0, bx1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
                kind = self.gen.random()
                if kind < 0.5:  # built (or demolished): the ground of the before image where it stands
                    part = m
                elif kind < 0.75:  # an extension: one half of it, across its longer side
                    part = m.clone()
                    first = self.gen.random() < 0.5
                    if by1 - by0 > bx1 - bx0:
                        cut = (by0 + by1) // 2
                        part[:, cut:] = 0 if first else part[:, cut:]
                        part[:, :cut] = part[:, :cut] if first else 0
                    else:
                        cut = (bx0 + bx1) // 2
                        part[:, :, cut:] = 0 if first else part[:, :, cut:]
                        part[:, :, :cut] = part[:, :, :cut] if first else 0
                else:  # a structure on top: a piece of another roof of the scene, scaled into this one
                    donors = [d for d in whole if d != bid]
                    if not donors:
                        continue
                    dm = win == self.gen.choice(donors)
                    dys, dxs = torch.nonzero(dm, as_tuple=True)
                    roof = before[:, int(dys.min()):int(dys.max()) + 1, int(dxs.min()):int(dxs.max()) + 1]
                    f = self.gen.uniform(0.3, 0.6)
                    th, tw = max(3, round((by1 - by0) * f)), max(3, round((bx1 - bx0) * f))
                    ty = self.gen.randrange(by0, max(by0 + 1, by1 - th + 1))
                    tx = self.gen.randrange(bx0, max(bx0 + 1, bx1 - tw + 1))
                    th, tw = min(th, src - ty), min(tw, src - tx)  # the window's edge cuts a piece at the border
                    piece = F.interpolate(roof[None], size=(th, tw), mode='bilinear', align_corners=False)[0]
                    part = torch.zeros_like(m)
                    part[:, ty:ty + th, tx:tx + tw] = 1
                    part = part * m
                    region = after[:, ty:ty + th, tx:tx + tw]
                    after[:, ty:ty + th, tx:tx + tw] = torch.where(part[:, ty:ty + th, tx:tx + tw] > 0, piece.clamp(0, 1), region)
                    lab = torch.maximum(lab, part)
                    continue
                # the ground comes back a pixel beyond the label, so no rim of the roof is left standing
                grown = F.max_pool2d(part[None], 3, 1, 1)[0]
                before = before * (1 - grown) + ground * grown
                lab = torch.maximum(lab, part)
            stack = torch.cat([before, after, lab])
            size = max(c + 8, round(src * s))
            if size != src:
                stack = F.interpolate(stack[None], size=(size, size), mode='bilinear', align_corners=False)[0]
            before, after, lab = stack[:3], stack[3:6], (stack[6:] > 0.5).float()
            y = self.gen.randrange(4, size - c - 3)
            x = self.gen.randrange(4, size - c - 3)
            dy, dx = self.gen.randint(-3, 3), self.gen.randint(-3, 3)
            A.append(before[:, y:y + c, x:x + c])
            B.append(after[:, y + dy:y + dy + c, x + dx:x + dx + c])
            L.append(lab[:, y + dy:y + dy + c, x + dx:x + dx + c])  # with the after image, as in `real`
        return torch.stack(A), torch.stack(B), torch.stack(L)

    def pick_index(self):
        if self.weights is None:
            return self.gen.randrange(len(self.pairs))
        return self.gen.choices(range(len(self.pairs)), weights=self.weights)[0]

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

    def batch(self, n, mix, same=0.0, regional=0.0, scale=(0.6, 1.3), isolated=0.0):
        n_same = int(round(n * same))
        n_iso = int(round(n * isolated))
        counts = np.random.RandomState(self.gen.randrange(1 << 30)).multinomial(n - n_same - n_iso, mix)
        parts = [self.same(n_same)] if n_same else []
        if n_iso:
            parts.append(self.isolated(n_iso, scale))
        if counts[0]:
            parts.append(self.real(counts[0], scale))
        if counts[1]:
            parts.append(self.synthetic(counts[1], procedural=False))
        if counts[2]:
            parts.append(self.synthetic(counts[2], procedural=True))
        a, b, lab = (torch.cat(t) for t in zip(*[(pa, pb, with_known(pl)) for pa, pb, pl in parts]))
        a, b, lab = self.geometric(a, b, lab)
        a, b = self.photometric(a), self.photometric(b)
        if regional > 0:
            a, b = self.regional(a, regional / 2), self.regional(b, regional / 2)
        swap = (self.rand(n, 1, 1, 1) < 0.5).float()  # which date is "before" does not matter for the label
        a, b = a * (1 - swap) + b * swap, b * (1 - swap) + a * swap
        return normalise(a), normalise(b), lab  # lab: [n, 2, c, c], the change and where it is known
