#!/usr/bin/env bash
# How the shipped weights were trained: on a lent GPU machine (the `device` tool), with
# the packed data carried along (scripts/pack_photos.py; packed/ is git-ignored):
#   python scripts/pack_photos.py ../shared/data/train packed/train
#   python scripts/pack_photos.py ../shared/data/dev packed/dev --format jpg --quality 90
#   (and the EfficientNet-Lite0 .pth from the PyPI package, as float16, in packed/)
# then `bash scripts/train_on_device.sh` there. Results land in $OUT.
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
OUT=${OUT:-train-out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, timm, PIL; print('torch', torch.__version__, 'timm', timm.__version__, 'pillow', PIL.__version__)"
timeout "${TRAIN_SECONDS:-500}" python3 cli.py train --data packed/train --dev packed/dev --out "$OUT/train" \
  --epochs 300 --max-minutes "${TRAIN_MINUTES:-6.5}" --batch-size 128 --learning-rate 1.2e-3 \
  --backbone-weights packed/efficientnet-lite0-fp16.pth --json > "$OUT/train.json" 2> "$OUT/train.log"
echo "train exit $?"
grep -v "^$" "$OUT/train.log" | tail -30
python3 bench/global_pass.py --random-weights --runs 30 > "$OUT/global_pass_gpu.json" 2>&1
cat "$OUT/global_pass_gpu.json"
