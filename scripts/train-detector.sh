#!/usr/bin/env bash
# Trains models/siam-unet-lite with the committed recipe (models/siam-unet-lite/README.md).
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
  # training: the labelled training splits (EGY-BCD is 0.25 m: resampled to 0.5 m) and backgrounds;
  # development: levir-cd-dev, egy-bcd-val, pak-houses-val are never trained on
  defaults=(--data "$D/pak-houses-train" --data "$D/egy-bcd-train@0.5"
            --backgrounds "$D/unlabeled-pairs" --backgrounds "$D/pak-houses-train"
            --dev "$D/levir-cd-dev" --dev "$D/egy-bcd-val" --dev "$D/pak-houses-val")
else
  echo "note: $D not found; training only on the --data folders given" >&2
fi
exec "$PYTHON" models/siam-unet-lite/train.py "${defaults[@]}" --out "$out" "$@"
