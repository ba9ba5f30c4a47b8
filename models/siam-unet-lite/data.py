"""Training data for siam-unet-lite: labelled pairs in the A/ B/ label/ layout (resampled to 0.5 m
where asked), the validation split, backgrounds, and the bank of real roofs cut from the labels."""

import json
import os

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


IMAGE_EXT = ('.png', '.jpg', '.jpeg', '.tif', '.tiff')


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
    has_known = os.path.isdir(os.path.join(folder, 'known'))
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
        lab_t = label_tensor(lab, scale)
        if has_known:
            # known/ (from `tuban training export`): 255 where a verdict says what is there; the label is a
            # second channel that the loss weighs pixels by (train.py), so unjudged ground teaches nothing
            known = read_label(os.path.join(folder, 'known', os.path.basename(find_label(folder, name))))
            if known.shape != lab.shape:
                raise SystemExit(f'{folder}/{name}: known {known.shape} and label {lab.shape} differ')
            lab_t = torch.cat([lab_t, label_tensor(known, scale)])
        pairs.append((name, to_tensor(a, scale), to_tensor(b, scale), lab_t))
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
