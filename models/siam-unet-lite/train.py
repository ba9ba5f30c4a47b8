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

from net import MEAN, STD, SiamUNetLite, WIDTHS, export_onnx, load_weights, normalise, refine_channels, save_weights
from data import load_backgrounds, load_pairs, load_split, roof_bank, split_spec
from sampler import Sampler


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
            t = lab[:1].bool()
            # a folder from `tuban training export` says where its label is known (second channel): ground no
            # verdict judged is neither a miss nor a false alarm, as the loss ignores it
            k = lab[1:2].bool() if lab.shape[0] > 1 else torch.ones_like(t)
            tp += int((p & t & k).sum())
            fp += int((p & ~t & k).sum())
            fn += int((~p & t & k).sum())
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[os.path.basename(os.path.normpath(folder))] = {'precision': round(prec, 4), 'recall': round(rec, 4), 'f1': round(f1, 4), 'iou': round(tp / (tp + fp + fn), 4) if tp + fp + fn else 0.0, 'scale': scale}
    net.train()
    return out


def dice_loss(logits, target, known):
    """Soft Dice over the pixels whose label is known (known = 1 everywhere for labelled folders)."""
    p = torch.sigmoid(logits) * known
    target = target * known
    inter = (p * target).sum((1, 2, 3))
    return (1 - (2 * inter + 1) / (p.sum((1, 2, 3)) + target.sum((1, 2, 3)) + 1)).mean()


def masked_bce(bce, logits, target, known, weight=None):
    """Per-pixel BCE averaged over the known pixels: the plain mean where every pixel is known. With
    `weight`, each pixel's term is multiplied by it (the mean still over the known pixels)."""
    terms = bce(logits, target) * known
    if weight is not None:
        terms = terms * weight
    return terms.sum() / known.sum().clamp(min=1)


EDGE_PX = 2


def edge_band(lab):
    """1 within EDGE_PX of a label's outline, inside or outside (dilation minus erosion), else 0."""
    k = 2 * EDGE_PX + 1
    return F.max_pool2d(lab, k, 1, EDGE_PX) - (1 - F.max_pool2d(1 - lab, k, 1, EDGE_PX))


ERODE_PX = 3


def interior_target(lab):
    """Building interiors: the change label eroded by ERODE_PX, so buildings that touch or nearly touch
    come apart; vectorize uses them as seeds to split a merged region."""
    k = 2 * ERODE_PX + 1
    return 1 - F.max_pool2d(1 - lab, k, 1, ERODE_PX)


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
    ap.add_argument('--isolated', type=float, default=0.0, help='fraction of each batch that is in-context change: one to three buildings of an after image built, half built or topped with another roof on one date, the rest of the neighbourhood standing on both')
    ap.add_argument('--regional', type=float, default=0.0, help='fraction of samples with a land-cover nuisance (regional colour shift and smoothing) on one date, unlabelled')
    ap.add_argument('--scale', default='0.6,1.3', help='range of random rescaling of real pairs')
    ap.add_argument('--pos-weight', type=float, default=2.0, help='BCE weight of a changed pixel against an unchanged one')
    ap.add_argument('--edge-weight', type=float, default=0.0, help='extra BCE weight of the pixels within EDGE_PX of a labelled '
                    'building\'s outline, on either side: most of the LEVIR validation errors lie there (edge_errors.py)')
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
    ap.add_argument('--freeze-bn', action='store_true', help='keep BatchNorm on the statistics --init was trained with '
                    '(normalise with them, never update them): a fine-tune on a mix of other imagery then changes the weights, not '
                    'what the whole network takes as normal')
    ap.add_argument('--anchor', type=float, default=0.0, help='with --init: add this times the squared distance of the '
                    'weights from those --init gave to the loss (L2-SP, Li et al. 2018): a fine-tune on a few of a city\'s chips '
                    'then moves the weights no further than its data asks, and forgets less of what the start knew (0: off)')
    ap.add_argument('--snapshots', action='store_true', help='also keep the weights of every evaluation as snapshots/step-N.npz')
    ap.add_argument('--resume', action='store_true', help='go on from --out/checkpoint.pt with the same arguments')
    ap.add_argument('--widths', default=','.join(map(str, WIDTHS)), help='encoder widths at 1/2, 1/4, 1/8, 1/16; wider than --init, the net starts from it widened, computing what it computes (Net2Net)')
    ap.add_argument('--refine', type=int, default=None, help="channels of the full-resolution refinement step (0: none; default: --init's, else none); a new step starts at zero, so --anchor holds it there and --freeze-bn keeps its BatchNorm on initial statistics")
    ap.add_argument('--refine-lr', type=float, default=1.0, help='the refinement step\'s learning rate as a multiple of --lr: a new '
                    'step starts at zero and, at a fine-tune\'s rate, learned nearly nothing in 2,700 steps (run T9)')
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
    refine = args.refine if args.refine is not None else refine_channels(args.init) if args.init else 0
    if args.init and refine != refine_channels(args.init) and refine_channels(args.init):
        raise SystemExit(f'--refine {refine}: --init {args.init} has a refinement step of {refine_channels(args.init)} channels')
    net = SiamUNetLite(widths, refine).to(device)
    if args.init:
        try:
            load_weights(net, args.init)  # a net wider than --init starts from it widened (net.widen)
        except ValueError as err:
            raise SystemExit(f'--widths {args.widths} with --init {args.init}: {err}')
    params = sum(p.numel() for p in net.parameters())
    if args.anchor < 0 or (args.anchor and not args.init):
        raise SystemExit(f'--anchor {args.anchor}: expected a weight ≥ 0, and --init to anchor to')
    # the starting weights, for --anchor's distance (BatchNorm's statistics are buffers, not weights: not anchored)
    start = [p.detach().clone() for p in net.parameters()] if args.anchor else None
    if not 0 <= args.ema < 1:
        raise SystemExit(f'--ema {args.ema}: expected a decay in [0, 1)')
    ema = copy.deepcopy(net).eval() if args.ema else None
    if args.freeze_bn:
        # every net.train() (the loop, after an evaluation or a checkpoint) leaves the BatchNorm layers in eval mode
        plain_train = net.train

        def train_frozen_bn(mode=True):
            plain_train(mode)
            if mode:
                for m in net.modules():
                    if isinstance(m, nn.BatchNorm2d):
                        m.eval()
            return net

        net.train = train_frozen_bn
    sampler = Sampler(pairs, backgrounds, roofs, args.crop, device, gen, weights, isolated=args.isolated > 0)
    if args.refine_lr <= 0 or (args.refine_lr != 1 and not refine):
        raise SystemExit(f'--refine-lr {args.refine_lr:g}: expected a multiple > 0, and a refinement step (--refine) to apply it to')
    # one group unless the step has a rate of its own, as before --refine-lr: its checkpoints resume
    refine_params = list(net.refine.parameters()) if args.refine_lr != 1 else []
    own_rate = {id(p) for p in refine_params}
    others = [p for p in net.parameters() if id(p) not in own_rate]
    groups = [{'params': others, 'lr_mult': 1.0}] + ([{'params': refine_params, 'lr_mult': args.refine_lr}] if refine_params else [])
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=1e-4)
    if args.pos_weight <= 0 or args.edge_weight < 0:
        raise SystemExit(f'--pos-weight {args.pos_weight} / --edge-weight {args.edge_weight}: expected > 0 and ≥ 0')
    bce = nn.BCEWithLogitsLoss(pos_weight=torch.tensor(args.pos_weight, device=device), reduction='none')
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
            'architecture': {'name': 'SiamUNetLite', 'widths': list(widths), **({'refine': refine, 'refineLr': args.refine_lr} if refine else {}), 'parameters': params, 'outputs': ['probability', 'interior'], 'interiorErodePx': ERODE_PX},
            'normalisation': {'mean': MEAN, 'std': STD},
            'seed': args.seed, 'steps': step, 'stepsPlanned': args.steps, 'maxMinutes': args.max_minutes, 'finished': final,
            'batch': args.batch, 'crop': args.crop, 'lr': args.lr, 'scale': list(scale), 'interiorWeight': args.interior_weight, 'ema': args.ema,
            'posWeight': args.pos_weight, 'edgeWeight': args.edge_weight, 'edgePx': EDGE_PX,
            'mix': dict(zip(['real', 'synthetic', 'procedural'], [round(v, 3) for v in mix])), 'same': args.same, 'regional': args.regional, 'isolated': args.isolated,
            'device': str(device) if device.type == 'cpu' else torch.cuda.get_device_name(device),
            'threads': torch.get_num_threads(), 'torch': torch.__version__,
            'trainingSeconds': round(elapsed_before + time.time() - t0, 1),
            'trainingData': [{'folder': os.path.basename(os.path.normpath(f)), 'scale': s, 'pairs': len(ps),
                              **({'weight': w} if weights else {})} for (f, s, ps), w in zip(train_sets, folder_weights)],
            'split': {k: sorted(v) for k, v in split.items()}, 'splitFile': args.split,
            'backgrounds': [os.path.basename(os.path.normpath(f)) for f in args.backgrounds], 'backgroundImages': len(backgrounds), 'realRoofs': len(roofs),
            'initialisedFrom': args.init, 'resumed': args.resume, 'freezeBn': args.freeze_bn, 'anchor': args.anchor,
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
            g['lr'] = lr * g.get('lr_mult', 1.0)  # a checkpoint's groups replace these: before --refine-lr they had none
        step += 1
        a, b, lab = sampler.batch(args.batch, mix, args.same, args.regional, scale, args.isolated)
        lab, known = lab[:, :1], lab[:, 1:2]
        logits = net(a, b)
        inner = interior_target(lab)
        edge = 1 + args.edge_weight * edge_band(lab) if args.edge_weight else None
        loss = masked_bce(bce, logits[:, :1], lab, known, edge) + dice_loss(logits[:, :1], lab, known)
        if args.interior_weight:
            loss = loss + args.interior_weight * (masked_bce(bce, logits[:, 1:2], inner, known) + dice_loss(logits[:, 1:2], inner, known))
        if start is not None:
            loss = loss + args.anchor * sum(((w - w0) ** 2).sum() for w, w0 in zip(net.parameters(), start))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            # from scratch the average warms up (its start is noise); a fine-tune's start is the model it refines,
            # and a warm-up would replace it with the first batches' weights and BatchNorm statistics at once
            update_ema(ema, net, args.ema if args.init else min(args.ema, (1 + step) / (10 + step)))
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
