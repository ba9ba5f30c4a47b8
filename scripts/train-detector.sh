#!/usr/bin/env bash
# Trains models/siam-unet-lite with the committed recipe (models/siam-unet-lite/README.md).
# A run writes checkpoint.pt every few minutes; the same command with --resume goes on from it.
#
#   scripts/train-detector.sh OUT_DIR [extra train.py arguments, e.g. --data exported-patches/ --init models/siam-unet-lite/weights.npz]
#
# Uses Debian's PyTorch (python3-torch, installed with apt when missing) under /usr/bin/python3;
# PYTHON=... picks another interpreter that has torch, numpy and Pillow. SHARED_DATA points at the
# shared change pairs (default ../shared/data/change-pairs); without them, give your own --data folders.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/train-detector.sh OUT_DIR [train.py arguments]}
shift
PYTHON=${PYTHON:-/usr/bin/python3}
if ! "$PYTHON" -c 'import torch, numpy, PIL' 2>/dev/null; then
  if [ "$PYTHON" != /usr/bin/python3 ]; then echo "$PYTHON lacks torch, numpy or Pillow" >&2; exit 1; fi
  echo "installing Debian's python3-torch, python3-numpy, python3-pil (needs root)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch python3-numpy python3-pil
fi
D=${SHARED_DATA:-../shared/data/change-pairs}
defaults=()
if [ -d "$D" ]; then
  # training: levir-cd-t38 less its validation images (models/siam-unet-lite/split.json), and the older
  # labelled training splits (EGY-BCD is 0.25 m: resampled to 0.5 m), drawn 0.45 / 0.45 / 0.1 (run T5);
  # development: levir-cd-t38's validation images, egy-bcd-val, pak-houses-val, levir-cd-dev, never trained on
  defaults=(--data "$D/levir-cd-t38=0.45" --data "$D/pak-houses-train=0.45" --data "$D/egy-bcd-train@0.5=0.1"
            --split models/siam-unet-lite/split.json
            --dev "$D/levir-cd-t38" --dev "$D/egy-bcd-val" --dev "$D/pak-houses-val" --dev "$D/levir-cd-dev")
else
  echo "note: $D not found; training only on the --data folders given" >&2
fi
exec "$PYTHON" models/siam-unet-lite/train.py "${defaults[@]}" --out "$out" "$@"
